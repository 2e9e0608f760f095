"""Bad scenario input: one ScenarioError naming the file, the field and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from sim.control import build_cluster, load_cluster
from sim.errors import ScenarioError, UserError
from sim.spec.load import load_scenario, scenario_from_dict

MINIMAL = """
name = "t"
[[nodes]]
name = "node1"
[[nodes]]
name = "node2"
[[pods]]
name = "web"
node = "node1"
containers = [{ name = "nginx", ports = [80] }, { name = "scrapyd", ports = [6800] }]
"""


def write(tmp_path: Path, text: str, name: str = "variant.toml") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def variant(tmp_path: Path, base: str, old: str = "", new: str = "", extra: str = "") -> Path:
    """``base`` with ``old`` replaced by ``new`` (must occur) and ``extra`` appended."""
    if old:
        assert old in base, old
        base = base.replace(old, new, 1)
    return write(tmp_path, base + extra)


def error_of(path: Path, overrides: dict | None = None) -> ScenarioError:
    """The ScenarioError of loading and building ``path`` (fails if none)."""
    with pytest.raises(ScenarioError) as info:
        load_cluster(path, overrides)
    err = info.value
    assert err.exit_code == 2
    assert err.file == str(path)
    assert str(path) in str(err)
    assert "Traceback" not in str(err) and "\n" not in str(err)
    return err


def test_minimal_variant_is_valid(tmp_path) -> None:
    cl = load_cluster(write(tmp_path, MINIMAL))
    assert cl.pods["web"].node == "node1"


def test_missing_file(tmp_path) -> None:
    err = error_of(tmp_path / "nope.toml")
    assert "not found" in err.problem


def test_malformed_toml(tmp_path) -> None:
    err = error_of(write(tmp_path, MINIMAL + "\n[[pods]\nname = 'x'\n"))
    assert "malformed TOML" in err.problem
    assert err.fix


def test_unknown_field_names_path_and_allowed_fields(tmp_path, article_path) -> None:
    text = article_path.read_text(encoding="utf-8")
    p = variant(tmp_path, text, 'address = "10.100.0.2"', 'adress = "10.100.0.2"')
    err = error_of(p)
    assert err.field == "nodes.0.adress"
    assert "nodes.0.adress" in str(err) and "unknown field" in str(err)
    for allowed in ("address", "name", "pod_subnet"):
        assert allowed in err.fix


def test_unknown_top_level_and_nested_cost_field(tmp_path) -> None:
    err = error_of(write(tmp_path, "colour = 1\n" + MINIMAL))
    assert err.field == "colour" and "pods" in err.fix
    err = error_of(write(tmp_path, MINIMAL + "[costs.veth]\nper_pakcet_us = 1\n"))
    assert err.field == "costs.veth.per_pakcet_us" and "per_packet_us" in err.fix


@pytest.mark.parametrize("cidr", ["10.0.0.0/33", "10.0.0.1/14", "10.0.0/14", "fish"])
def test_bad_cluster_cidr(tmp_path, cidr) -> None:
    err = error_of(write(tmp_path, MINIMAL + f'[pod_network]\ncluster_cidr = "{cidr}"\n'))
    assert err.field == "pod_network.cluster_cidr"
    assert cidr in str(err)


def test_bad_node_network_cidr(tmp_path) -> None:
    err = error_of(write(tmp_path, MINIMAL + '[node_network]\ncidr = "10.100.0.0/24x"\n'))
    assert err.field == "node_network.cidr"


def test_duplicate_pod_names(tmp_path) -> None:
    err = error_of(variant(tmp_path, MINIMAL, extra='[[pods]]\nname = "web"\nnode = "node2"\n'))
    assert err.field == "pods.1.name" and "duplicate" in err.problem and "'web'" in err.problem


def test_duplicate_node_names(tmp_path) -> None:
    err = error_of(variant(tmp_path, MINIMAL, 'name = "node2"', 'name = "node1"'))
    assert err.field == "nodes.1.name" and "duplicate" in err.problem


def test_name_shared_by_node_and_pod(tmp_path) -> None:
    err = error_of(variant(tmp_path, MINIMAL, extra='[[pods]]\nname = "node2"\nnode = "node2"\n'))
    assert "more than one" in err.problem


def test_two_containers_of_a_pod_on_one_port(tmp_path) -> None:
    err = error_of(variant(tmp_path, MINIMAL, "ports = [6800]", "ports = [6800, 80]"))
    assert err.field == "pods.0.containers.1.ports"
    assert "port 80" in err.problem and "nginx" in err.problem and "scrapyd" in err.problem


def test_same_port_in_different_pods_is_fine(tmp_path) -> None:
    extra = '[[pods]]\nname = "api"\nnode = "node1"\ncontainers = [{ name = "a", ports = [80] }]\n'
    load_cluster(variant(tmp_path, MINIMAL, extra=extra))


def test_port_out_of_range(tmp_path) -> None:
    err = error_of(variant(tmp_path, MINIMAL, "ports = [80]", "ports = [70000]"))
    assert err.field == "pods.0.containers.0.ports"


def _pods(n: int, node: str = "node1") -> str:
    return "".join(f'[[pods]]\nname = "p{k}"\nnode = "{node}"\n' for k in range(n))


def test_more_pods_than_subnet_holds(tmp_path) -> None:
    # a /30 holds network, bridge, one pod, broadcast
    base = MINIMAL + "[pod_network]\nnode_prefix_length = 30\n"
    load_cluster(variant(tmp_path, base, extra=_pods(1, "node2")))
    err = error_of(variant(tmp_path, base, extra=_pods(1)))
    assert err.field == "pods.1.node"
    assert "too many pods" in err.problem and "10.0.0.0/30" in err.problem


def test_more_pods_than_max_pods_per_node(tmp_path) -> None:
    base = MINIMAL + "[pod_network]\nmax_pods_per_node = 2\n"
    load_cluster(variant(tmp_path, base, extra=_pods(1)))
    err = error_of(variant(tmp_path, base, extra=_pods(2)))
    assert err.field == "pods.2.node" and "max_pods_per_node is 2" in err.problem


def test_node_prefix_length_out_of_range(tmp_path) -> None:
    err = error_of(write(tmp_path, MINIMAL + "[pod_network]\nnode_prefix_length = 31\n"))
    assert err.field == "pod_network.node_prefix_length"


EXPLICIT = """
[pod_network]
mode = "explicit"
cluster_cidr = "10.0.0.0/14"
[[nodes]]
name = "node1"
pod_subnet = "{a}"
[[nodes]]
name = "node2"
pod_subnet = "{b}"
[[pods]]
name = "web"
node = "node2"
"""


def test_explicit_subnets_valid(tmp_path) -> None:
    cl = load_cluster(write(tmp_path, EXPLICIT.format(a="10.1.0.0/24", b="10.2.0.0/25")))
    assert str(cl.nodes["node2"].pod_subnet) == "10.2.0.0/25"
    assert str(cl.pods["web"].address) == "10.2.0.2"
    assert str(cl.nodes["node2"].bridge_address) == "10.2.0.1"


def test_explicit_subnet_outside_cluster_cidr(tmp_path) -> None:
    err = error_of(write(tmp_path, EXPLICIT.format(a="10.0.0.0/24", b="10.8.0.0/24")))
    assert err.field == "nodes.1.pod_subnet" and "does not fit" in err.problem


def test_explicit_subnets_overlap(tmp_path) -> None:
    err = error_of(write(tmp_path, EXPLICIT.format(a="10.0.0.0/23", b="10.0.1.0/24")))
    assert err.field == "nodes.1.pod_subnet" and "overlaps" in err.problem


def test_explicit_mode_requires_pod_subnet(tmp_path) -> None:
    text = EXPLICIT.format(a="10.0.0.0/24", b="X").replace('pod_subnet = "X"\n', "")
    err = error_of(write(tmp_path, text))
    assert err.field == "nodes.1.pod_subnet"


def test_pod_subnet_outside_explicit_mode(tmp_path) -> None:
    err = error_of(
        variant(tmp_path, MINIMAL, 'name = "node2"', 'name = "node2"\npod_subnet = "10.9.0.0/24"')
    )
    assert err.field == "nodes.1.pod_subnet"


def test_pod_on_unknown_node(tmp_path) -> None:
    err = error_of(variant(tmp_path, MINIMAL, 'node = "node1"', 'node = "node9"'))
    assert err.field == "pods.0.node"
    assert "node9" in err.problem and "node1" in err.fix and "node2" in err.fix


@pytest.mark.parametrize(
    ("dotted", "value"),
    [
        ("costs.veth.per_packet_us", -1),
        ("costs.bridge.per_byte_ns", -0.5),
        ("costs.eth0_tx.propagation_us", -1),
        ("costs.nat_extra_us", -0.1),
        ("costs.forward.servers", 0),
        ("costs.gateway_link.rate_gbps", 0),
    ],
)
def test_negative_or_zero_costs(tmp_path, dotted, value) -> None:
    err = error_of(write(tmp_path, MINIMAL), {dotted: value})
    assert err.field == dotted
    assert repr(value) in str(err)


def test_negative_cost_in_file(tmp_path) -> None:
    err = error_of(write(tmp_path, MINIMAL + "[costs.veth]\nper_packet_us = -1\n"))
    assert err.field == "costs.veth.per_packet_us"
    assert "greater than or equal to 0" in err.problem


def test_node_address_outside_node_network(tmp_path) -> None:
    err = error_of(
        variant(tmp_path, MINIMAL, 'name = "node2"', 'name = "node2"\naddress = "10.9.0.3"')
    )
    assert err.field == "nodes.1.address"


def test_node_address_is_gateway(tmp_path) -> None:
    err = error_of(
        variant(tmp_path, MINIMAL, 'name = "node2"', 'name = "node2"\naddress = "10.100.0.1"')
    )
    assert err.field == "nodes.1.address" and "gateway" in err.problem


def test_pod_range_overlapping_node_network(tmp_path) -> None:
    err = error_of(write(tmp_path, MINIMAL + '[pod_network]\ncluster_cidr = "10.100.0.0/16"\n'))
    assert err.field == "pod_network.cluster_cidr" and "overlaps" in err.problem


def test_set_path_to_missing_list_item(tmp_path) -> None:
    err = error_of(write(tmp_path, MINIMAL), {"pods.nope.node": "node1"})
    assert err.field == "pods.nope.node"


def test_scenario_from_dict_names_given_file() -> None:
    with pytest.raises(ScenarioError) as info:
        scenario_from_dict({"nodes": [{"name": "a", "adress": "x"}]}, file="inline.toml")
    assert str(info.value).startswith("inline.toml: nodes.0.adress: unknown field")


def test_no_nodes_is_an_error(tmp_path) -> None:
    err = error_of(write(tmp_path, 'name = "empty"\n'))
    assert err.field == "nodes"


def test_errors_are_user_errors_with_exit_status_2(tmp_path) -> None:
    p = write(tmp_path, MINIMAL + "[[pods]]\nname = 'web'\nnode = 'node2'\n")
    with pytest.raises(UserError) as info:
        build_cluster(load_scenario(p), str(p))
    assert info.value.exit_code == 2


def test_scenario_is_frozen_and_digest_stable(article_path) -> None:
    a, b = load_scenario(article_path), load_scenario(article_path)
    assert a.digest() == b.digest()
    c = load_scenario(article_path, {"costs.veth.per_packet_us": 0.7})
    assert c.digest() != a.digest()
    with pytest.raises(Exception):  # noqa: B017 - pydantic frozen model
        a.name = "other"  # type: ignore[misc]


def test_host_bits_in_a_cidr_say_which_network_was_meant(tmp_path):
    from sim.errors import ScenarioError
    from sim.spec.load import load_scenario

    p = tmp_path / "hb.toml"
    p.write_text('[pod_network]\ncluster_cidr = "10.0.0.1/14"\n[[nodes]]\nname = "n1"\n')
    with pytest.raises(ScenarioError) as exc:
        load_scenario(p)
    msg = str(exc.value)
    assert "pod_network.cluster_cidr" in msg and "host bits" in msg and "10.0.0.0/14" in msg


def test_trace_names_the_argument_of_an_unknown_endpoint():
    from click.testing import CliRunner

    from sim.cli.main import cli

    res = CliRunner().invoke(cli, ["trace", "experiments/scenarios/article.toml", "web", "nope"])
    assert res.exit_code == 2
    assert ": DST: unknown endpoint 'nope'" in res.output
