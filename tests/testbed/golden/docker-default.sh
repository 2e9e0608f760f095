# address mapping (scenario -> replica, offsets kept inside each block):
#   node network           10.100.0.0/24      -> 198.18.0.0/24
#   pod range              172.17.0.0/16      -> 198.19.0.0/16
#   non-masquerade CIDR    10.0.0.0/8         -> 198.18.0.0/16
#   everything else        (outside them)     -> 198.19.0.0/16
# replica of scenario 'docker-default', prefix 'pns-'
# the namespaces
ip -batch - <<'EOF'
netns add pns-p0
netns add pns-p1
netns add pns-p2
netns add pns-p3
netns add pns-p4
netns add pns-n0
netns add pns-n1
netns add pns-gw
netns add pns-lan
EOF
ip netns exec pns-p0 sysctl -q -e -w net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0 net.ipv4.conf.all.accept_redirects=0 net.ipv4.conf.default.accept_redirects=0 net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
ip netns exec pns-p1 sysctl -q -e -w net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0 net.ipv4.conf.all.accept_redirects=0 net.ipv4.conf.default.accept_redirects=0 net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
ip netns exec pns-p2 sysctl -q -e -w net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0 net.ipv4.conf.all.accept_redirects=0 net.ipv4.conf.default.accept_redirects=0 net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
ip netns exec pns-p3 sysctl -q -e -w net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0 net.ipv4.conf.all.accept_redirects=0 net.ipv4.conf.default.accept_redirects=0 net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
ip netns exec pns-p4 sysctl -q -e -w net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0 net.ipv4.conf.all.accept_redirects=0 net.ipv4.conf.default.accept_redirects=0 net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
ip netns exec pns-n0 sysctl -q -e -w net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0 net.ipv4.conf.all.accept_redirects=0 net.ipv4.conf.default.accept_redirects=0 net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1 net.ipv4.ip_forward=1 net.ipv4.conf.all.send_redirects=0 net.ipv4.conf.default.send_redirects=0
ip netns exec pns-n1 sysctl -q -e -w net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0 net.ipv4.conf.all.accept_redirects=0 net.ipv4.conf.default.accept_redirects=0 net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1 net.ipv4.ip_forward=1 net.ipv4.conf.all.send_redirects=0 net.ipv4.conf.default.send_redirects=0
ip netns exec pns-gw sysctl -q -e -w net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0 net.ipv4.conf.all.accept_redirects=0 net.ipv4.conf.default.accept_redirects=0 net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1 net.ipv4.ip_forward=1 net.ipv4.conf.all.send_redirects=0 net.ipv4.conf.default.send_redirects=0
ip netns exec pns-lan sysctl -q -e -w net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0 net.ipv4.conf.all.accept_redirects=0 net.ipv4.conf.default.accept_redirects=0 net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
# pns-p0: pod web
ip -n pns-p0 -batch - <<'EOF'
link set lo up
link add eth0 type veth peer name vp0 netns pns-n0
address add 198.19.0.2/16 dev eth0 noprefixroute
link set eth0 up
route add 198.19.0.0/16 dev eth0
route add default via 198.19.0.1 dev eth0
EOF
# pns-p1: pod client
ip -n pns-p1 -batch - <<'EOF'
link set lo up
link add eth0 type veth peer name vp1 netns pns-n0
address add 198.19.0.3/16 dev eth0 noprefixroute
link set eth0 up
route add 198.19.0.0/16 dev eth0
route add default via 198.19.0.1 dev eth0
EOF
# pns-p2: pod api
ip -n pns-p2 -batch - <<'EOF'
link set lo up
link add eth0 type veth peer name vp2 netns pns-n1
address add 198.19.0.2/16 dev eth0 noprefixroute
link set eth0 up
route add 198.19.0.0/16 dev eth0
route add default via 198.19.0.1 dev eth0
EOF
# pns-p3: pod worker
ip -n pns-p3 -batch - <<'EOF'
link set lo up
link add eth0 type veth peer name vp3 netns pns-n1
address add 198.19.0.3/16 dev eth0 noprefixroute
link set eth0 up
route add 198.19.0.0/16 dev eth0
route add default via 198.19.0.1 dev eth0
EOF
# pns-p4: pod batch
ip -n pns-p4 -batch - <<'EOF'
link set lo up
link add eth0 type veth peer name vp4 netns pns-n1
address add 198.19.0.4/16 dev eth0 noprefixroute
link set eth0 up
route add 198.19.0.0/16 dev eth0
route add default via 198.19.0.1 dev eth0
EOF
# pns-n0: node node1
ip -n pns-n0 -batch - <<'EOF'
link set lo up
link add docker0 type bridge
address add 198.19.0.1/16 dev docker0 noprefixroute
link set docker0 up
link set vp0 master docker0 up
link set vp1 master docker0 up
link add eth0 type veth peer name vn0 netns pns-lan
address add 198.18.0.2/24 dev eth0 noprefixroute
link set eth0 up
route add 198.19.0.0/16 dev docker0
route add 198.18.0.0/24 dev eth0
route add default via 198.18.0.1 dev eth0
EOF
# pns-n1: node node2
ip -n pns-n1 -batch - <<'EOF'
link set lo up
link add docker0 type bridge
address add 198.19.0.1/16 dev docker0 noprefixroute
link set docker0 up
link set vp2 master docker0 up
link set vp3 master docker0 up
link set vp4 master docker0 up
link add eth0 type veth peer name vn1 netns pns-lan
address add 198.18.0.3/24 dev eth0 noprefixroute
link set eth0 up
route add 198.19.0.0/16 dev docker0
route add 198.18.0.0/24 dev eth0
route add default via 198.18.0.1 dev eth0
EOF
# pns-gw: gateway
ip -n pns-gw -batch - <<'EOF'
link set lo up
link add eth0 type veth peer name vg0 netns pns-lan
address add 198.18.0.1/24 dev eth0 noprefixroute
link set eth0 up
route add 198.18.0.0/24 dev eth0
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
# pns-n0: masquerade
ip netns exec pns-n0 nft -f - <<'EOF'
table ip podnetsim {
  set non_masquerade {
    type ipv4_addr; flags interval;
    elements = { 198.18.0.0/16 }
  }
  chain postrouting {
    type nat hook postrouting priority 100; policy accept;
    ip saddr 198.19.0.0/16 oifname "eth0" ip daddr != @non_masquerade masquerade
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
    ip saddr 198.19.0.0/16 oifname "eth0" ip daddr != @non_masquerade masquerade
  }
}
EOF
