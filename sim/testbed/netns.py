"""Build, inspect and tear down a :class:`~sim.testbed.topology.Topology` replica.

Everything is created *inside* network namespaces named ``<prefix>...``; the
host's own namespace and interfaces are never touched. Every command addresses
its namespace explicitly (``ip -n NS ...``, ``ip netns exec NS ...``), and veth
pairs are created with both ends already in their target namespaces, so no
device ever exists in the root namespace, even for an instant.

Teardown needs no state: :func:`down` lists ``ip netns list``, kills the
processes still running inside each matching namespace (by pid) and deletes
the namespace, which destroys its veths, bridges and nftables tables.

Requirements: root, ``ip`` (iproute2), ``nft`` (nftables) and a kernel with
network namespaces, veth, bridge and nf_tables NAT (masquerade).
"""

from __future__ import annotations

import ipaddress
import json
import os
import shlex
import shutil
import signal
import subprocess
import time
from collections.abc import Iterable, Mapping, Sequence

from sim.testbed.errors import TestbedError, one_line
from sim.testbed.topology import Topology, check_prefix

__all__ = [
    "NFT_TABLE",
    "check_kernel",
    "down",
    "list_namespaces",
    "missing_requirements",
    "node_ruleset",
    "require",
    "run",
    "status",
    "up",
]

NFT_TABLE = "podnetsim"
"""Name of the nftables table (family ``ip``) each node namespace gets."""

_FIXES = {
    "ip": "apt-get install -y iproute2",
    "nft": "apt-get update && apt-get install -y nftables",
    "taskset": "apt-get install -y util-linux",
}

_COMMAND_TIMEOUT_S = 30.0


# --------------------------------------------------------------------- helpers
def run(
    cmd: Sequence[str], *, input_text: str | None = None, timeout_s: float = _COMMAND_TIMEOUT_S
) -> str:
    """Run one command and return its stdout; raise on any failure.

    Parameters
    ----------
    cmd : sequence of str
        Program and arguments (no shell).
    input_text : str or None, default None
        Text fed to the command's stdin.
    timeout_s : float, default 30.0
        Wall-clock limit for the command, in seconds.

    Returns
    -------
    str
        The command's standard output.

    Raises
    ------
    TestbedError
        If the program is missing, times out or exits non-zero; the one-line
        message holds the command and its stderr.
    """
    text = shlex.join(cmd)
    try:
        proc = subprocess.run(
            list(cmd),
            input=input_text,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
    except FileNotFoundError:
        fix = _FIXES.get(cmd[0], "install it")
        raise TestbedError(f"command `{text}` failed: {cmd[0]} not found. Fix: {fix}") from None
    except subprocess.TimeoutExpired:
        raise TestbedError(f"command `{text}` timed out after {timeout_s:g} s") from None
    if proc.returncode != 0:
        err = one_line(proc.stderr or proc.stdout or "") or "(no output)"
        raise TestbedError(f"command `{text}` failed (exit {proc.returncode}): {err}")
    return proc.stdout


def missing_requirements(*, probe: bool = False, nft: bool = True) -> list[str]:
    """List what is missing to run the testbed, each with its fix.

    Parameters
    ----------
    probe : bool, default False
        Also require ``taskset`` (needed by :mod:`sim.testbed.probe`).
    nft : bool, default True
        Require ``nft`` (building needs it; :func:`down` and :func:`status`
        do not).

    Returns
    -------
    list of str
        One human-readable line per problem; empty when all is present.
    """
    problems = []
    if os.geteuid() != 0:
        problems.append(
            "not running as root (network namespaces need CAP_SYS_ADMIN/NET_ADMIN). "
            "Fix: run as root"
        )
    tools = ["ip", *(["nft"] if nft else []), *(["taskset"] if probe else [])]
    for tool in tools:
        if shutil.which(tool) is None:
            problems.append(f"`{tool}` not found on PATH. Fix: {_FIXES[tool]}")
    return problems


def require(*, probe: bool = False, nft: bool = True) -> None:
    """Raise :class:`TestbedError` unless root and the needed tools are present.

    Parameters
    ----------
    probe : bool, default False
        Also require ``taskset``.
    nft : bool, default True
        Also require ``nft``.

    Raises
    ------
    TestbedError
        Naming every missing requirement and its fix.
    """
    problems = missing_requirements(probe=probe, nft=nft)
    if problems:
        raise TestbedError("testbed requirements missing: " + "; ".join(problems))


def list_namespaces(prefix: str) -> list[str]:
    """Names of existing network namespaces that start with ``prefix``.

    Parameters
    ----------
    prefix : str
        Namespace prefix (validated by :func:`~sim.testbed.topology.check_prefix`).

    Returns
    -------
    list of str
        Matching namespace names, sorted.
    """
    check_prefix(prefix)
    out = run(["ip", "netns", "list"])
    names = []
    for line in out.splitlines():
        parts = line.split()
        if parts and parts[0].startswith(prefix):
            names.append(parts[0])
    return sorted(names)


def _ns_pids(ns: str) -> list[int]:
    try:
        out = run(["ip", "netns", "pids", ns])
    except TestbedError:
        return []
    return [int(tok) for tok in out.split() if tok.isdigit()]


def _ip(ns: str, *args: str) -> str:
    return run(["ip", "-n", ns, *args])


def _sysctl(ns: str, values: Mapping[str, str], *, optional: Iterable[str] = ()) -> None:
    """Write ``/proc/sys`` keys inside ``ns`` (``optional`` ones only if present)."""
    optional = set(optional)
    lines = ["set -e"]
    for key, value in values.items():
        path = "/proc/sys/" + key.replace(".", "/")
        if key in optional:
            lines.append(
                f"if [ -w {shlex.quote(path)} ]; then echo {shlex.quote(value)} > "
                f"{shlex.quote(path)}; fi"
            )
        else:
            lines.append(f"echo {shlex.quote(value)} > {shlex.quote(path)}")
    run(["ip", "netns", "exec", ns, "sh", "-c", "\n".join(lines)])


def _veth(ns_a: str, name_a: str, ns_b: str, name_b: str) -> None:
    """Create a veth pair with end ``name_a`` in ``ns_a`` and ``name_b`` in ``ns_b``."""
    _ip(ns_a, "link", "add", name_a, "type", "veth", "peer", "name", name_b, "netns", ns_b)


# ------------------------------------------------------------------ teardown
def down(prefix: str, *, timeout_s: float = 10.0) -> list[str]:
    """Remove every namespace whose name starts with ``prefix``.

    Processes still running inside those namespaces (e.g. an orphaned probe)
    are sent SIGKILL by pid first, so the namespaces (and their veths,
    bridges and nftables tables) are really destroyed. Idempotent, and needs
    no state: it works after an interrupted :func:`up`.

    Parameters
    ----------
    prefix : str
        Namespace prefix, e.g. ``"pns-"``.
    timeout_s : float, default 10.0
        Bound on waiting for killed processes to exit, in seconds.

    Returns
    -------
    list of str
        Names of the namespaces that were removed.

    Raises
    ------
    TestbedError
        If requirements are missing or a namespace cannot be removed.
    """
    check_prefix(prefix)
    require(nft=False)
    names = list_namespaces(prefix)
    pids = {pid for ns in names for pid in _ns_pids(ns) if pid != os.getpid()}
    for pid in sorted(pids):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + timeout_s
    while pids and time.monotonic() < deadline:
        pids = {pid for pid in pids if _alive(pid)}
        if pids:
            time.sleep(0.01)
    for ns in names:
        try:
            run(["ip", "netns", "delete", ns])
        except TestbedError:
            if ns in list_namespaces(prefix):
                raise
    left = list_namespaces(prefix)
    if left:
        raise TestbedError(f"namespaces still present after down({prefix!r}): {left}")
    return names


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            state = fh.read().rsplit(")", 1)[-1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


# ------------------------------------------------------------------- status
def status(prefix: str) -> dict[str, dict]:
    """Describe what exists for ``prefix``: namespaces, links, addresses, pids.

    Parameters
    ----------
    prefix : str
        Namespace prefix.

    Returns
    -------
    dict
        ``{namespace: {"links": [{"name", "state", "master", "addresses"}],
        "pids": [int, ...]}}``; ``addresses`` are ``"a.b.c.d/len"`` strings.
        Empty when nothing exists.
    """
    require(nft=False)
    result: dict[str, dict] = {}
    for ns in list_namespaces(prefix):
        links = []
        try:
            data = json.loads(_ip(ns, "-j", "addr", "show") or "[]")
        except (TestbedError, json.JSONDecodeError):
            data = []
        for link in data:
            links.append(
                {
                    "name": link.get("ifname"),
                    "state": link.get("operstate"),
                    "master": link.get("master"),
                    "addresses": [
                        f"{a['local']}/{a['prefixlen']}"
                        for a in link.get("addr_info", [])
                        if a.get("family") == "inet"
                    ],
                }
            )
        result[ns] = {"links": links, "pids": _ns_pids(ns)}
    return result


# ------------------------------------------------------------------- kernel
def check_kernel(prefix: str = "pns-") -> list[str]:
    """Try the kernel features the replica needs in a scratch namespace.

    Creates ``<prefix>chk``, adds a bridge, a veth pair and an nftables NAT
    masquerade rule inside it, and deletes it again.

    Parameters
    ----------
    prefix : str, default "pns-"
        Prefix for the scratch namespace.

    Returns
    -------
    list of str
        One line per missing feature (empty if everything works).
    """
    check_prefix(prefix)
    problems = missing_requirements()
    if problems:
        return problems
    ns = f"{prefix}chk"
    steps = [
        ("network namespaces", ["ip", "netns", "add", ns]),
        ("bridge devices", ["ip", "-n", ns, "link", "add", "chkbr", "type", "bridge"]),
        (
            "veth devices",
            ["ip", "-n", ns, "link", "add", "chka", "type", "veth", "peer", "name", "chkb"],
        ),
        ("nf_tables", ["ip", "netns", "exec", ns, "nft", "add", "table", "ip", NFT_TABLE]),
        (
            "nf_tables nat chains",
            [
                "ip",
                "netns",
                "exec",
                ns,
                "nft",
                "add",
                "chain",
                "ip",
                NFT_TABLE,
                "post",
                "{ type nat hook postrouting priority 100 ; }",
            ],
        ),
        (
            "nf_tables masquerade",
            [
                "ip",
                "netns",
                "exec",
                ns,
                "nft",
                "add",
                "rule",
                "ip",
                NFT_TABLE,
                "post",
                "oifname",
                "chka",
                "masquerade",
            ],
        ),
    ]
    try:
        for feature, cmd in steps:
            try:
                run(cmd)
            except TestbedError as err:
                problems.append(f"kernel lacks {feature}: {err}")
                break
    finally:
        if ns in list_namespaces(prefix):
            run(["ip", "netns", "delete", ns])
    return problems


# ---------------------------------------------------------------------- build
def node_ruleset(topo: Topology, node_name: str) -> str:
    """The nftables ruleset (``nft -f`` syntax) of node ``node_name``.

    Masquerades packets whose source is the node's pod subnet, whose
    destination is neither that subnet nor inside any ``non_masquerade``
    CIDR, and that do not leave through the pod bridge.

    Parameters
    ----------
    topo : Topology
        The replica.
    node_name : str
        Which node.

    Returns
    -------
    str
        The ruleset text.
    """
    node = topo.node(node_name)
    keep = list(ipaddress.collapse_addresses(topo.non_masquerade))
    elements = f"elements = {{ {', '.join(str(n) for n in keep)} }}" if keep else ""
    return "\n".join(
        [
            f"table ip {NFT_TABLE} {{",
            "  set non_masquerade {",
            "    type ipv4_addr; flags interval;",
            f"    {elements}",
            "  }",
            "  chain postrouting {",
            "    type nat hook postrouting priority 100; policy accept;",
            f"    ip saddr {node.pod_subnet} ip daddr != {node.pod_subnet} "
            f'oifname != "{node.bridge_name}" ip daddr != @non_masquerade masquerade',
            "  }",
            "}",
            "",
        ]
    )


def up(
    topo: Topology,
    *,
    replace: bool = False,
    bridge_nf_call_iptables: bool | None = None,
) -> list[str]:
    """Build the replica described by ``topo``.

    Parameters
    ----------
    topo : Topology
        What to build.
    replace : bool, default False
        If namespaces with ``topo.prefix`` already exist, remove them first
        instead of failing.
    bridge_nf_call_iptables : bool or None, default None
        Set ``net.bridge.bridge-nf-call-iptables`` in node namespaces
        (whether bridged pod-to-pod frames traverse the IPv4 netfilter hooks,
        as on kubenet nodes). ``None`` keeps the kernel default (1 when
        ``br_netfilter`` is loaded).

    Returns
    -------
    list of str
        The namespaces created, in build order.

    Raises
    ------
    TestbedError
        If requirements are missing, namespaces with the prefix already exist
        (and ``replace`` is false), or any command fails. On failure the
        partial replica is removed with :func:`down` before raising.
    """
    require()
    existing = list_namespaces(topo.prefix)
    if existing:
        if not replace:
            raise TestbedError(
                f"namespaces with prefix {topo.prefix!r} already exist: {existing}. "
                f"Fix: call down({topo.prefix!r}) or pass replace=True"
            )
        down(topo.prefix)
    try:
        _build(topo, bridge_nf_call_iptables)
    except BaseException:
        try:
            down(topo.prefix)
        except TestbedError:
            pass
        raise
    return list(topo.namespaces())


def _base_sysctls(ns: str, *, forward: bool) -> None:
    values = {
        "net.ipv4.conf.all.rp_filter": "0",
        "net.ipv4.conf.default.rp_filter": "0",
        "net.ipv4.conf.all.accept_redirects": "0",
        "net.ipv4.conf.default.accept_redirects": "0",
        "net.ipv6.conf.all.disable_ipv6": "1",
        "net.ipv6.conf.default.disable_ipv6": "1",
    }
    if forward:
        values.update(
            {
                "net.ipv4.ip_forward": "1",
                "net.ipv4.conf.all.send_redirects": "0",
                "net.ipv4.conf.default.send_redirects": "0",
            }
        )
    _sysctl(
        ns,
        values,
        optional=("net.ipv6.conf.all.disable_ipv6", "net.ipv6.conf.default.disable_ipv6"),
    )


def _build(topo: Topology, bridge_nf_call_iptables: bool | None) -> None:
    lan, gw = topo.lan_ns, topo.gateway_ns
    gw_ip = str(topo.gateway.lan_address.ip)

    for ns in topo.namespaces():
        run(["ip", "netns", "add", ns])
        _ip(ns, "link", "set", "lo", "up")
    forwarding = {gw, *(topo.node_ns(n.name) for n in topo.nodes)}
    for ns in topo.namespaces():
        _base_sysctls(ns, forward=ns in forwarding)

    # LAN: one bridge joining node eth0s and the gateway.
    _ip(lan, "link", "add", "br0", "type", "bridge")
    _ip(lan, "link", "set", "br0", "up")

    # Gateway on the LAN.
    _veth(gw, "eth0", lan, "vg0")
    _ip(lan, "link", "set", "vg0", "master", "br0", "up")
    _ip(gw, "addr", "add", str(topo.gateway.lan_address), "dev", "eth0")
    _ip(gw, "link", "set", "eth0", "up")

    for node in topo.nodes:
        ns = topo.node_ns(node.name)
        port = topo.node_lan_port(node.name)
        _veth(ns, "eth0", lan, port)
        _ip(lan, "link", "set", port, "master", "br0", "up")
        _ip(ns, "addr", "add", str(node.lan_address), "dev", "eth0")
        _ip(ns, "link", "set", "eth0", "up")
        _ip(ns, "link", "add", node.bridge_name, "type", "bridge")
        _ip(ns, "addr", "add", str(node.bridge_address), "dev", node.bridge_name)
        _ip(ns, "link", "set", node.bridge_name, "up")
        _ip(ns, "route", "add", "default", "via", gw_ip, "dev", "eth0")
        if bridge_nf_call_iptables is not None:
            _sysctl(
                ns,
                {"net.bridge.bridge-nf-call-iptables": str(int(bridge_nf_call_iptables))},
                optional=("net.bridge.bridge-nf-call-iptables",),
            )
        run(["ip", "netns", "exec", ns, "nft", "-f", "-"], input_text=node_ruleset(topo, node.name))
        # The VPC route for this node's pods (the fix the replica reproduces).
        _ip(
            gw, "route", "add", str(node.pod_subnet), "via", str(node.lan_address.ip), "dev", "eth0"
        )

    for pod in topo.pods:
        node = topo.node(pod.node)
        ns, node_ns = topo.pod_ns(pod.name), topo.node_ns(pod.node)
        peer = topo.pod_peer_ifname(pod.name)
        _veth(ns, "eth0", node_ns, peer)
        _ip(node_ns, "link", "set", peer, "master", node.bridge_name, "up")
        _ip(ns, "addr", "add", str(pod.address), "dev", "eth0")
        _ip(ns, "link", "set", "eth0", "up")
        _ip(ns, "route", "add", "default", "via", str(node.bridge_address.ip), "dev", "eth0")

    for ext in topo.externals:
        ns = topo.external_ns(ext.name)
        link = topo.external_link(ext.name)
        _veth(ns, "eth0", gw, link)
        _ip(ns, "addr", "add", str(ext.address), "dev", "eth0")
        _ip(ns, "link", "set", "eth0", "up")
        _ip(gw, "link", "set", link, "up")
        _ip(gw, "route", "add", f"{ext.address.ip}/32", "dev", link, "scope", "link")
        _ip(ns, "route", "add", str(topo.node_lan), "via", gw_ip, "dev", "eth0", "onlink")
        if ext.return_route_to_pods:
            _ip(ns, "route", "add", str(topo.pod_cidr), "via", gw_ip, "dev", "eth0", "onlink")
