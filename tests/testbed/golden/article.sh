# address mapping (scenario -> replica, offsets kept inside each block):
#   pod range              10.0.0.0/23        -> 198.18.0.0/23  (used part of 10.0.0.0/14)
#   node network           10.100.0.0/24      -> 198.18.2.0/24
#   host intranet          10.200.0.0/24      -> 198.18.3.0/24
#   host internet          93.184.216.0/24    -> 198.19.0.0/24
#   non-masquerade CIDR    10.0.0.0/8         -> 198.18.0.0/16
#   everything else        (outside them)     -> 198.19.0.0/16
# replica of scenario 'article', prefix 'pns-'
# the namespaces
ip -batch - <<'EOF'
netns add pns-p0
netns add pns-p1
netns add pns-p2
netns add pns-n0
netns add pns-n1
netns add pns-gw
netns add pns-lan
netns add pns-x0
netns add pns-x1
EOF
ip netns exec pns-p0 sysctl -q -e -w net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0 net.ipv4.conf.all.accept_redirects=0 net.ipv4.conf.default.accept_redirects=0 net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
ip netns exec pns-p1 sysctl -q -e -w net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0 net.ipv4.conf.all.accept_redirects=0 net.ipv4.conf.default.accept_redirects=0 net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
ip netns exec pns-p2 sysctl -q -e -w net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0 net.ipv4.conf.all.accept_redirects=0 net.ipv4.conf.default.accept_redirects=0 net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
ip netns exec pns-n0 sysctl -q -e -w net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0 net.ipv4.conf.all.accept_redirects=0 net.ipv4.conf.default.accept_redirects=0 net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1 net.ipv4.ip_forward=1 net.ipv4.conf.all.send_redirects=0 net.ipv4.conf.default.send_redirects=0
ip netns exec pns-n1 sysctl -q -e -w net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0 net.ipv4.conf.all.accept_redirects=0 net.ipv4.conf.default.accept_redirects=0 net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1 net.ipv4.ip_forward=1 net.ipv4.conf.all.send_redirects=0 net.ipv4.conf.default.send_redirects=0
ip netns exec pns-gw sysctl -q -e -w net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0 net.ipv4.conf.all.accept_redirects=0 net.ipv4.conf.default.accept_redirects=0 net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1 net.ipv4.ip_forward=1 net.ipv4.conf.all.send_redirects=0 net.ipv4.conf.default.send_redirects=0
ip netns exec pns-lan sysctl -q -e -w net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0 net.ipv4.conf.all.accept_redirects=0 net.ipv4.conf.default.accept_redirects=0 net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
ip netns exec pns-x0 sysctl -q -e -w net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0 net.ipv4.conf.all.accept_redirects=0 net.ipv4.conf.default.accept_redirects=0 net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
ip netns exec pns-x1 sysctl -q -e -w net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0 net.ipv4.conf.all.accept_redirects=0 net.ipv4.conf.default.accept_redirects=0 net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
# pns-p0: pod web
ip -n pns-p0 -batch - <<'EOF'
link set lo up
link add eth0 type veth peer name vp0 netns pns-n0
address add 198.18.0.2/24 dev eth0 noprefixroute
link set eth0 up
route add 198.18.0.0/24 dev eth0
route add default via 198.18.0.1 dev eth0
EOF
# pns-p1: pod client
ip -n pns-p1 -batch - <<'EOF'
link set lo up
link add eth0 type veth peer name vp1 netns pns-n0
address add 198.18.0.3/24 dev eth0 noprefixroute
link set eth0 up
route add 198.18.0.0/24 dev eth0
route add default via 198.18.0.1 dev eth0
EOF
# pns-p2: pod api
ip -n pns-p2 -batch - <<'EOF'
link set lo up
link add eth0 type veth peer name vp2 netns pns-n1
address add 198.18.1.2/24 dev eth0 noprefixroute
link set eth0 up
route add 198.18.1.0/24 dev eth0
route add default via 198.18.1.1 dev eth0
EOF
# pns-n0: node node1
ip -n pns-n0 -batch - <<'EOF'
link set lo up
link add cbr0 type bridge
address add 198.18.0.1/24 dev cbr0 noprefixroute
link set cbr0 up
link set vp0 master cbr0 up
link set vp1 master cbr0 up
link add eth0 type veth peer name vn0 netns pns-lan
address add 198.18.2.2/24 dev eth0 noprefixroute
link set eth0 up
route add 198.18.0.0/24 dev cbr0
route add 198.18.2.0/24 dev eth0
route add default via 198.18.2.1 dev eth0
EOF
# pns-n1: node node2
ip -n pns-n1 -batch - <<'EOF'
link set lo up
link add cbr0 type bridge
address add 198.18.1.1/24 dev cbr0 noprefixroute
link set cbr0 up
link set vp2 master cbr0 up
link add eth0 type veth peer name vn1 netns pns-lan
address add 198.18.2.3/24 dev eth0 noprefixroute
link set eth0 up
route add 198.18.1.0/24 dev cbr0
route add 198.18.2.0/24 dev eth0
route add default via 198.18.2.1 dev eth0
EOF
# pns-gw: gateway
ip -n pns-gw -batch - <<'EOF'
link set lo up
link add eth0 type veth peer name vg0 netns pns-lan
address add 198.18.2.1/24 dev eth0 noprefixroute
link set eth0 up
link add vx0 type veth peer name eth0 netns pns-x0
link set vx0 up
link add vx1 type veth peer name eth0 netns pns-x1
link set vx1 up
route add 198.18.2.0/24 dev eth0
route add 198.18.0.0/24 via 198.18.2.2 dev eth0
route add 198.18.1.0/24 via 198.18.2.3 dev eth0
route add 198.18.3.10/32 dev vx0
route add 198.19.0.34/32 dev vx1
EOF
# pns-lan: lan
ip -n pns-lan -batch - <<'EOF'
link set lo up
link add br0 type bridge
link set br0 up
link set vg0 master br0 up
link set vn0 master br0 up
link set vn1 master br0 up
EOF
# pns-x0: host intranet
ip -n pns-x0 -batch - <<'EOF'
link set lo up
address add 198.18.3.10/32 dev eth0 noprefixroute
link set eth0 up
route add 198.18.2.0/24 via 198.18.2.1 dev eth0 onlink
route add 198.18.0.0/23 via 198.18.2.1 dev eth0 onlink
EOF
# pns-x1: host internet
ip -n pns-x1 -batch - <<'EOF'
link set lo up
address add 198.19.0.34/32 dev eth0 noprefixroute
link set eth0 up
route add 198.18.2.0/24 via 198.18.2.1 dev eth0 onlink
EOF
# pns-n0: masquerade
ip netns exec pns-n0 nft -f - <<'EOF'
table ip podnetsim {
  set non_masquerade {
    type ipv4_addr; flags interval;
    elements = { 198.18.0.0/16 }
  }
  chain postrouting {
    type nat hook postrouting priority 100; policy accept;
    ip saddr 198.18.0.0/24 oifname "eth0" ip daddr != @non_masquerade masquerade
  }
}
EOF
# pns-n1: masquerade
ip netns exec pns-n1 nft -f - <<'EOF'
table ip podnetsim {
  set non_masquerade {
    type ipv4_addr; flags interval;
    elements = { 198.18.0.0/16 }
  }
  chain postrouting {
    type nat hook postrouting priority 100; policy accept;
    ip saddr 198.18.1.0/24 oifname "eth0" ip daddr != @non_masquerade masquerade
  }
}
EOF
