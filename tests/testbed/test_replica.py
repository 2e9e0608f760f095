"""The article scenario rebuilt in namespaces: SNAT verdicts, lost replies, cleanup.

Needs root, ``ip``, ``nft`` and ``taskset``; skipped with the reason
otherwise. Namespaces are named ``pn?-<pid>-...``, addresses lie in
198.18.0.0/15, and every test removes what it made.
"""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from sim.cli import testbed_cmds
from sim.testbed import netns
from sim.testbed.calibrate import calibrate
from sim.testbed.compare import compare
from sim.testbed.measure import endpoint_pairs, measure_replica, model_outcome
from sim.testbed.replica import build, load_replica, verify

from .kernel import PID, requires_kernel, root_links

ROOT = Path(__file__).resolve().parents[2]
ARTICLE = ROOT / "experiments" / "scenarios" / "article.toml"
PREFIX = f"pna-{PID}-"  # the article replica
PREFIX_NR = f"pnr-{PID}-"  # without the intranet's return route
PREFIX_KILL = f"pnk-{PID}-"  # measure killed with SIGKILL
NO_RETURN = {"external_hosts.intranet.return_route_to_pods": False}


pytestmark = requires_kernel


def _root_nft_tables() -> str:
    return subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout


@pytest.fixture(scope="module")
def replica():
    netns.down(PREFIX)
    before = root_links(), _root_nft_tables()
    r = load_replica(ARTICLE, prefix=PREFIX)
    build(r)
    try:
        yield r
    finally:
        netns.down(PREFIX)
        assert (root_links(), _root_nft_tables()) == before, "the root namespace changed"


def _agree(replica, doc):
    rows = []
    for pair in doc["pairs"]:
        mo = model_outcome(replica.cluster, pair["src"], pair["dst"])
        seen = mo["seen_source"]
        mapped = None if seen is None else str(replica.mapping.map_address(seen))
        obs = pair["observed"]
        rows.append(
            (pair["src"], pair["dst"], mo["outcome"], mapped, obs["outcome"], obs["seen_source"])
        )
    return rows


def test_replica_matches_scenario_and_root_is_untouched(replica):
    assert verify(replica) == []
    assert not any(n.startswith(("vp", "vn", "vx", "vg", "cbr")) for n in root_links())
    st = netns.status(PREFIX)
    node1 = {link["name"]: link for link in st[replica.topology.node_ns("node1")]["links"]}
    assert node1["eth0"]["addresses"] == ["198.18.2.2/24"]  # 10.100.0.2
    assert node1["cbr0"]["addresses"] == ["198.18.0.1/24"]  # 10.0.0.1
    for info in st.values():
        for link in info["links"]:
            for addr in link["addresses"]:
                assert addr.startswith(("198.18.", "198.19.", "127.")), addr


def test_every_endpoint_pair_snat_verdict_equals_the_model(replica):
    doc = measure_replica(replica, cases=(), pair_n=50)
    assert len(doc["pairs"]) == len(endpoint_pairs(replica.cluster)) == 22
    rows = _agree(replica, doc)
    for src, dst, m_out, m_seen, o_out, o_seen in rows:
        assert (m_out, m_seen) == (o_out, o_seen), (src, dst)
    by_pair = {(r[0], r[1]): r for r in rows}
    assert by_pair[("web", "internet")][5] == "198.18.2.2"  # SNAT to node1 (10.100.0.2)
    assert by_pair[("api", "internet")][5] == "198.18.2.3"  # SNAT to node2 (10.100.0.3)
    assert by_pair[("api", "intranet")][5] == "198.18.1.2"  # pod address kept (10/8)
    assert by_pair[("web/nginx", "web/scrapyd")][5] == "127.0.0.1"
    assert by_pair[("internet", "web")][4] == "request lost"  # no route to pods out there


def test_without_return_route_model_and_replica_both_lose_the_replies():
    netns.down(PREFIX_NR)
    r = load_replica(ARTICLE, NO_RETURN, prefix=PREFIX_NR)
    with_route = load_replica(ARTICLE, prefix=PREFIX_NR)
    build(r)
    try:
        assert verify(r) == []
        assert any("should have a route" in p for p in verify(with_route))
        pairs = [("web", "intranet"), ("api", "intranet"), ("web", "internet")]
        doc = measure_replica(r, cases=(), pairs=pairs, pair_n=50)
    finally:
        netns.down(PREFIX_NR)
    rows = {(s, d): row for s, d, *row in _agree(r, doc)}
    assert rows[("web", "intranet")] == ["reply lost", "198.18.0.2", "reply lost", "198.18.0.2"]
    assert rows[("api", "intranet")] == ["reply lost", "198.18.1.2", "reply lost", "198.18.1.2"]
    # masqueraded replies come back to the node address: unaffected
    assert rows[("web", "internet")] == ["round trip", "198.18.2.2", "round trip", "198.18.2.2"]
    obs = doc["pairs"][0]["observed"]
    assert obs["served"] > 0 and obs["send_errors"] > 0  # requests arrived, replies had no route


def test_rtt_pipeline_measure_calibrate_compare(replica, tmp_path):
    doc = measure_replica(replica, n=2000, warmup=200, repeats=2, pairs=False)
    assert set(doc["rtt"]) == {"localhost", "same_node", "cross_node", "ext_nomasq", "ext_masq"}
    rtt = {c: e["p50_us"] for c, e in doc["rtt"].items()}
    assert all(e["ok"] for e in doc["rtt"].values()), {
        c: e.get("error") for c, e in doc["rtt"].items()
    }
    assert rtt["localhost"] < rtt["same_node"] < rtt["cross_node"]
    assert doc["rtt"]["ext_masq"]["seen_source_scenario"] == "10.100.0.2"
    assert doc["rtt"]["ext_nomasq"]["seen_source_scenario"] == "10.0.0.2"
    doc["scenario"]["file"] = str(ARTICLE)
    fit = calibrate(replica.cluster, doc)
    assert fit["endpoint_us"] > 0
    from sim.testbed.calibrate import write_params

    write_params(fit, tmp_path / "p.toml")
    res = compare(str(ARTICLE), doc, str(tmp_path / "p.toml"))
    for case in ("localhost", "same_node", "ext_nomasq"):  # fitted: reproduced
        assert res["rtt"][case]["ratio"] == pytest.approx(1.0, abs=0.02)
    for case in ("cross_node", "ext_masq"):  # held out: predicted
        assert res["rtt"][case]["predicted_p50_us"] > 0


def test_measure_without_replica_is_a_clear_error():
    res = CliRunner().invoke(
        testbed_cmds.testbed, ["measure", str(ARTICLE), "--prefix", f"pnm-{PID}-"]
    )
    assert res.exit_code == 2 and "no replica" in res.output and "testbed up" in res.output


def _spawn(script: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(script)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def test_up_sigkill_measure_down_leaves_nothing(tmp_path):
    runner = CliRunner()
    runner.invoke(testbed_cmds.testbed, ["down", "--prefix", PREFIX_KILL])
    before = root_links(), _root_nft_tables()
    res = runner.invoke(testbed_cmds.testbed, ["up", str(ARTICLE), "--prefix", PREFIX_KILL])
    assert res.exit_code == 0, res.output
    assert "198.18.0.0/16" in res.output  # the printed mapping
    proc = _spawn(f"""
        from sim.cli.testbed_cmds import testbed
        testbed(["measure", {str(ARTICLE)!r}, "--prefix", {PREFIX_KILL!r}, "--no-pairs",
                 "--case", "cross_node", "-n", "1000000", "--repeats", "1",
                 "-o", {str(tmp_path / "m.json")!r}])
    """)
    probes: set[int] = set()
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and len(probes) < 2:
            st = netns.status(PREFIX_KILL)
            probes = {pid for info in st.values() for pid in info["pids"]}
            time.sleep(0.05)
        assert len(probes) >= 2, "the probes never started"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        proc.stdout.close()
    assert netns.list_namespaces(PREFIX_KILL)  # orphaned replica and probes are still there
    res = runner.invoke(testbed_cmds.testbed, ["down", "--prefix", PREFIX_KILL])
    assert res.exit_code == 0 and "removed 9 namespaces" in res.output, res.output
    assert netns.list_namespaces(PREFIX_KILL) == []
    assert (root_links(), _root_nft_tables()) == before
    for pid in probes:
        assert not _alive(pid), f"probe {pid} survived"
    res = runner.invoke(testbed_cmds.testbed, ["down", "--prefix", PREFIX_KILL])
    assert res.exit_code == 0 and "nothing to remove" in res.output
    assert not (tmp_path / "m.json").exists()


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0]
    except OSError:
        return False
    return state not in "ZX"
