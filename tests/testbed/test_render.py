"""The replica rendered from the control plane (no root needed).

Golden files: ``podnetsim testbed up --dry-run`` of each shipped scenario is
compared with ``tests/testbed/golden/*.sh``; regenerate on purpose with
``PODNETSIM_REGEN_GOLDEN=1``. The composition of each model station kind in
kernel work is checked against the veth pairs and bridges of the scripts.
"""

import os
import re
from collections import deque
from pathlib import Path

import pytest
from click.testing import CliRunner

from sim.cli import testbed_cmds
from sim.control import load_cluster
from sim.errors import UserError
from sim.testbed.render import COMPOSITION, render

GOLDEN = Path(__file__).parent / "golden"
_VETH = re.compile(r"^link add (\S+) type veth peer name (\S+) netns (\S+)$")


@pytest.mark.parametrize("name", ["article", "docker-default"])
def test_dry_run_matches_golden_file(name, article_path):
    scenario = article_path.parent / f"{name}.toml"
    res = CliRunner().invoke(testbed_cmds.testbed, ["up", str(scenario), "--dry-run"])
    assert res.exit_code == 0, res.output
    golden = GOLDEN / f"{name}.sh"
    if os.environ.get("PODNETSIM_REGEN_GOLDEN"):
        golden.write_text(res.output)
    assert res.output == golden.read_text()


def _graph(replica) -> dict[str, set[str]]:
    """Namespaces joined by veth pairs, parsed from the rendered scripts."""
    edges: dict[str, set[str]] = {ns.name: set() for ns in replica.namespaces}
    for ns in replica.namespaces:
        for line in ns.script:
            m = _VETH.match(line)
            if m:
                edges[ns.name].add(m.group(3))
                edges[m.group(3)].add(ns.name)
    return edges


def _work(replica, a: str, b: str) -> dict[str, int]:
    """Kernel work from namespace ``a`` to ``b``: veth crossings and bridge-only namespaces."""
    edges, prev, todo = _graph(replica), {a: None}, deque([a])
    while todo:
        cur = todo.popleft()
        for nxt in sorted(edges[cur] - set(prev)):
            prev[nxt] = cur
            todo.append(nxt)
    path = [b]
    while prev[path[-1]] is not None:
        path.append(prev[path[-1]])
    by_name = {ns.name: ns for ns in replica.namespaces}
    out = {"veth": len(path) - 1}
    middle = [by_name[n] for n in path[1:-1]]
    bridged = [
        ns for ns in middle if not ns.forwarding and any("type bridge" in x for x in ns.script)
    ]
    if bridged:
        out["lan_bridge"] = len(bridged)
    return out


def _sum(*kinds: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for kind in kinds:
        for e, k in COMPOSITION[kind].items():
            out[e] = out.get(e, 0) + k
    return out


def test_station_kinds_cost_what_the_rendered_build_crosses(article_path):
    r = render(load_cluster(article_path))
    node, gw, pod, host = (
        r.owners["node1"],
        r.owners["gateway"],
        r.owners["web"],
        r.owners["internet"],
    )
    assert _work(r, pod, node) == _sum("veth") == _work(r, node, pod)
    assert _work(r, node, gw) == _sum("eth0_tx")
    assert _work(r, gw, node) == _sum("gateway_link", "eth0_rx")
    assert _work(r, gw, host) == _sum("gateway_link")
    assert _work(r, host, gw) == _sum("external_link")
    bridges = {ns.name: [x for x in ns.script if "type bridge" in x] for ns in r.namespaces}
    assert bridges[node] == ["link add cbr0 type bridge"]  # the node bridge: COMPOSITION["bridge"]


def test_every_model_route_is_rendered_and_nothing_else(article_path):
    cl = load_cluster(article_path)
    r = render(cl)
    for ns in r.namespaces:
        owner = {"gateway": "gateway"}.get(
            ns.role,
            ns.role.replace("pod ", "pod:").replace("node ", "node:").replace("host ", "host:"),
        )
        if ns.role == "lan":
            assert ns.routes == ()
            continue
        model = [x for x in cl.tables[owner].routes if x.dev != "lo"]
        assert len(ns.routes) == len(model) == sum(x.startswith("route add") for x in ns.script)
    x0 = next(ns for ns in r.namespaces if ns.role == "host intranet")
    x1 = next(ns for ns in r.namespaces if ns.role == "host internet")
    assert "198.18.0.0/23" in x0.routes and "198.18.0.0/23" not in x1.routes  # return route


def test_docker_default_reuses_one_pod_range_per_node(docker_path):
    r = render(load_cluster(docker_path))
    web = dict(next(ns for ns in r.namespaces if ns.role == "pod web").addresses)
    api = dict(next(ns for ns in r.namespaces if ns.role == "pod api").addresses)
    assert web == api == {"eth0": "198.19.0.2/16"}  # as both are 172.17.0.2
    gw = next(ns for ns in r.namespaces if ns.role == "gateway")
    assert gw.routes == ("198.18.0.0/24",)  # no pod routes: the model's gateway has none


def test_bad_prefixes_are_user_errors(article_path):
    cl = load_cluster(article_path)
    for prefix in ("Bad", "no-dash", "this-prefix-is-far-too-long-"):
        with pytest.raises(UserError, match="prefix"):
            render(cl, prefix)
