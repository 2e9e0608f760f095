"""``podnetsim check`` and ``podnetsim trace``: output, JSON and exit statuses."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from sim.cli.main import cli

WEB, API, NODE1 = "10.0.0.2", "10.0.1.2", "10.100.0.2"
NO_RETURN = "external_hosts.intranet.return_route_to_pods=false"


def run(*args: str):
    return CliRunner().invoke(cli, [str(a) for a in args])


def trace_json(*args: str) -> dict:
    result = run("trace", *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def stations(doc: dict) -> list[str]:
    return [h["station"] for h in doc["hops"]]


def assert_bad_input(result, *needles: str) -> str:
    """Exit status 2, one ``error:`` line on stderr, no traceback."""
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)
    err = result.stderr.strip()
    assert err.startswith("error: ") and "\n" not in err
    assert "Traceback" not in result.output
    for n in needles:
        assert n in err, (n, err)
    return err


# -- check -------------------------------------------------------------------------------


def test_check_article(article_path) -> None:
    result = run("check", article_path)
    assert result.exit_code == 0
    out = result.stdout
    assert "node1: eth0 10.100.0.2, pod subnet 10.0.0.0/24, cbr0 10.0.0.1" in out
    assert "pod web: 10.0.0.2  containers: nginx (80), scrapyd (6800)" in out
    assert "WARNING" not in result.output
    assert run("check", article_path, "--strict").exit_code == 0


def test_check_docker_default_reports_overlap(docker_path) -> None:
    result = run("check", docker_path)
    assert result.exit_code == 0
    warnings = [ln for ln in result.stdout.splitlines() if ln.startswith("WARNING")]
    assert len(warnings) == 1
    assert "overlapping" in warnings[0] and "ambiguous" in warnings[0]
    assert "172.17.0.0/16" in warnings[0]
    assert run("check", docker_path, "--strict").exit_code == 1


# -- trace: the "Done when" list ---------------------------------------------------


def test_trace_web_api(article_path) -> None:
    doc = trace_json(article_path, "web", "api")
    assert doc["verdict"] == "delivered" and doc["delivered_to"] == "api"
    s = stations(doc)
    for st in ("node1/eth0:tx", "gateway/forward", "node2/eth0:rx"):
        assert st in s
    assert s.index("node1/eth0:tx") < s.index("gateway/forward") < s.index("node2/eth0:rx")
    assert all((h["src"], h["dst"]) == (WEB, API) for h in doc["hops"])


def test_trace_web_client_same_node(article_path) -> None:
    doc = trace_json(article_path, "web", "client")
    assert doc["verdict"] == "delivered"
    assert stations(doc) == ["node1/veth-web:from-pod", "node1/cbr0", "node1/veth-client:to-pod"]
    assert not any("eth0" in s or "gateway" in s for s in stations(doc))


def test_trace_containers_loopback(article_path) -> None:
    doc = trace_json(article_path, "web/nginx", "web/scrapyd")
    assert doc["verdict"] == "delivered"
    assert len(doc["hops"]) == 1 and "lo" in doc["hops"][0]["station"]


def test_trace_web_internet_masqueraded(article_path) -> None:
    doc = trace_json(article_path, "web", "internet")
    assert doc["verdict"] == "delivered"
    s = stations(doc)
    fwd = s.index("node1/forward")
    assert [h["src"] for h in doc["hops"][:fwd]] == [WEB] * fwd
    assert {h["src"] for h in doc["hops"][fwd:]} == {NODE1}
    assert doc["hops"][fwd]["nat"] is True


def test_trace_web_internet_reply_translated_back(article_path) -> None:
    doc = trace_json(article_path, "web", "internet", "--reply")
    assert doc["verdict"] == "delivered" and doc["delivered_to"] == "web"
    assert doc["hops"][0]["dst"] == NODE1
    assert doc["hops"][-1]["dst"] == WEB
    assert doc["hops"][-1]["station"] == "node1/veth-web:to-pod"


def test_trace_web_intranet_keeps_pod_ip(article_path) -> None:
    doc = trace_json(article_path, "web", "intranet")
    assert doc["verdict"] == "delivered"
    assert {h["src"] for h in doc["hops"]} == {WEB}
    assert not any(h["nat"] for h in doc["hops"])


def test_trace_intranet_reply_without_return_route(article_path) -> None:
    doc = trace_json(article_path, "web", "intranet", "--reply", "--set", NO_RETURN)
    assert doc["verdict"] == "dropped" and doc["delivered_to"] is None
    assert "no route" in doc["reason"]
    fwd = trace_json(article_path, "web", "intranet", "--set", NO_RETURN)
    assert fwd["verdict"] == "delivered"
    # and with the return route (the shipped file) the reply arrives
    assert trace_json(article_path, "web", "intranet", "--reply")["verdict"] == "delivered"


def test_trace_set_non_masquerade_cidrs(article_path) -> None:
    s = 'masquerade.non_masquerade_cidrs=["10.0.0.0/8", "93.184.216.0/24"]'
    doc = trace_json(article_path, "web", "internet", "--set", s)
    assert doc["verdict"] == "delivered" and {h["src"] for h in doc["hops"]} == {WEB}
    doc = trace_json(article_path, "web", "api", "--set", "masquerade.non_masquerade_cidrs=[]")
    assert doc["hops"][-1]["src"] == NODE1


@pytest.mark.parametrize(("src", "dst"), [("web", "api"), ("client", "batch")])
def test_trace_docker_default_cross_node_not_delivered(docker_path, src, dst) -> None:
    doc = trace_json(docker_path, src, dst)
    assert doc["verdict"] != "delivered" and doc["reason"]


def test_trace_text_output(article_path) -> None:
    result = run("trace", article_path, "web", "internet")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0] == "web -> internet"
    assert lines[-1] == "DELIVERED"
    nat_lines = [ln for ln in lines if ln.rstrip().endswith("NAT")]
    assert len(nat_lines) == 1 and "node1/forward" in nat_lines[0]
    reply = run("trace", article_path, "web", "intranet", "--reply", "--set", NO_RETURN)
    assert reply.exit_code == 0
    assert reply.stdout.splitlines()[-1].startswith("DROPPED: no route")


def test_trace_docker_warns_on_stderr(docker_path) -> None:
    result = run("trace", docker_path, "web", "client")
    assert result.exit_code == 0
    assert "WARNING: overlapping" in result.stderr


# -- bad input: exit status 2, one line, no traceback ---------------------------------------


def test_trace_unknown_pod(article_path) -> None:
    assert_bad_input(run("trace", article_path, "web", "nope"), str(article_path), "'nope'")
    assert_bad_input(run("trace", article_path, "nope", "api"), "unknown endpoint 'nope'")


def test_trace_unknown_container(article_path) -> None:
    assert_bad_input(run("trace", article_path, "web/nope", "api"), "no container 'nope'", "nginx")


def test_check_malformed_toml(tmp_path) -> None:
    p = tmp_path / "bad.toml"
    p.write_text('[[nodes]\nname = "a"\n', encoding="utf-8")
    assert_bad_input(run("check", p), str(p), "malformed TOML")


def test_check_unknown_field(tmp_path, article_path) -> None:
    p = tmp_path / "typo.toml"
    p.write_text(
        article_path.read_text().replace('address = "10.100.0.2"', 'adress = "10.100.0.2"')
    )
    err = assert_bad_input(run("check", p), str(p), "nodes.0.adress", "unknown field")
    assert "address" in err.split("Fix:")[1]


def test_check_missing_file(tmp_path) -> None:
    assert_bad_input(run("check", tmp_path / "missing.toml"), "file not found")


@pytest.mark.parametrize(
    ("setting", "field"),
    [
        ("costs.veth.per_packet_us=-1", "costs.veth.per_packet_us"),
        ('pod_network.cluster_cidr="10.0.0.0/33"', "pod_network.cluster_cidr"),
        ('pod_network.cluster_cidr="10.0.0.1/14"', "pod_network.cluster_cidr"),
        ("pod_network.node_prefix_length=30", "pods.1.node"),
        ("pod_network.max_pods_per_node=1", "pods.1.node"),
        ('pods.web.node="node9"', "pods.0.node"),
        ('pods.client.name="web"', "pods.1.name"),
        ('nodes.node2.name="node1"', "nodes.1.name"),
        ("nodes.0.adress=1", "nodes.0.adress"),
        ("nosuchlist.3.x=1", "nosuchlist"),
    ],
)
def test_check_bad_set_values(article_path, setting, field) -> None:
    assert_bad_input(run("check", article_path, "--set", setting), str(article_path), field)


def test_set_without_equals(article_path) -> None:
    assert_bad_input(run("check", article_path, "--set", "oops"), "--set")


def test_check_two_containers_one_port(tmp_path, article_path) -> None:
    p = tmp_path / "ports.toml"
    p.write_text(article_path.read_text().replace("ports = [6800]", "ports = [6800, 80]"))
    assert_bad_input(run("check", p), str(p), "pods.0.containers.1.ports", "port 80")


# -- a real process --------------------------------------------------------------------------


def _subprocess(*args: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "sim.cli.main", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).resolve().parents[1],
    )


def test_subprocess_bad_inputs_exit_2_without_traceback(tmp_path, article_path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("nodes = [ {name = 'a' ]\n", encoding="utf-8")
    for args, needle in [
        (("check", bad), "malformed TOML"),
        (("trace", article_path, "web", "nope"), "unknown endpoint 'nope'"),
    ]:
        proc = _subprocess(*args)
        assert proc.returncode == 2, proc.stderr
        assert "Traceback" not in proc.stderr
        assert proc.stderr.startswith("error: ") and needle in proc.stderr
        assert proc.stdout == ""


def test_subprocess_trace_json(article_path) -> None:
    proc = _subprocess("trace", article_path, "web", "api", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["verdict"] == "delivered"
