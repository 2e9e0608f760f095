"""The article and docker-default scenarios rebuilt in namespaces (needs root).

Skipped, with the reason, without root, ``ip``, ``nft``, ``sysctl``,
``taskset``, ``sockperf`` or the kernel features. Namespaces are named
``pn?-<pid>-...``, addresses lie in 198.18.0.0/15, and every test removes what
it made and checks that the root namespace is unchanged.
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
from sim.testbed import TestbedError, netns
from sim.testbed.replica import build, load_replica, verify
from sim.validate.calibrate import calibrate
from sim.validate.cases import endpoint_pairs, model_outcome
from sim.validate.compare import RATIO_TOLERANCE, RTT_TOLERANCE, compare
from sim.validate.measure import measure_replica
from sim.validate.models import Timing
from sim.validate.params import write_params

from .kernel import PID, built_replica, requires_kernel, root_state

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ROOT / "experiments" / "scenarios"
ARTICLE, DOCKER = SCENARIOS / "article.toml", SCENARIOS / "docker-default.toml"
PREFIX = f"pna-{PID}-"  # the article replica
NO_RETURN = {"external_hosts.intranet.return_route_to_pods": False}
ATTEMPTS = 3  # a noisy (shared) machine gets this many full measurements before a failure

pytestmark = requires_kernel


@pytest.fixture(scope="module")
def replica():
    with built_replica(ARTICLE, PREFIX) as r:
        yield r


def _rows(replica, doc):
    """(src, dst, model outcome, model source [replica], observed outcome, observed source)."""
    out = []
    for p in doc.pairs:
        mo = model_outcome(replica.cluster, p.src, p.dst)
        seen = None if mo.seen_source is None else str(replica.mapping.address(mo.seen_source))
        out.append((p.src, p.dst, mo.outcome, seen, p.observed.outcome, p.observed.seen_source))
    return out


def test_replica_is_the_rendered_one_and_root_is_untouched(replica):
    assert verify(replica) == []
    st = netns.status(PREFIX)
    node1 = {link["name"]: link for link in st[replica.namespace("node1")]["links"]}
    assert node1["eth0"]["addresses"] == ["198.18.2.2/24"]  # 10.100.0.2
    assert node1["cbr0"]["addresses"] == ["198.18.0.1/24"]  # 10.0.0.1
    assert node1["vp0"]["master"] == "cbr0"
    for info in st.values():
        for link in info["links"]:
            assert all(a.startswith(("198.18.", "198.19.", "127.")) for a in link["addresses"])
    assert not {n for n in root_state()[0] if n.startswith(("vp", "vn", "vx", "vg", "cbr"))}


def test_every_endpoint_pair_snat_verdict_equals_the_model(replica):
    doc = measure_replica(replica, cases=())
    assert len(doc.pairs) == len(endpoint_pairs(replica.cluster)) == 22
    rows = _rows(replica, doc)
    for src, dst, m_out, m_seen, o_out, o_seen in rows:
        assert (m_out, m_seen) == (o_out, o_seen), (src, dst)
    by_pair = {(r[0], r[1]): r for r in rows}
    assert by_pair[("web", "internet")][5] == "198.18.2.2"  # SNAT to node1 (10.100.0.2)
    assert by_pair[("api", "internet")][5] == "198.18.2.3"  # SNAT to node2 (10.100.0.3)
    assert by_pair[("api", "intranet")][5] == "198.18.1.2"  # pod address kept (10/8)
    assert by_pair[("web/nginx", "web/scrapyd")][5] == "127.0.0.1"
    assert by_pair[("internet", "web")][4] == "request lost"  # no route to pods out there


def test_without_return_route_model_and_replica_both_lose_the_replies():
    prefix = f"pnr-{PID}-"
    netns.down(prefix)
    r = load_replica(ARTICLE, NO_RETURN, prefix=prefix)
    build(r)
    try:
        assert verify(r) == []
        assert any("routes" in p for p in verify(load_replica(ARTICLE, prefix=prefix)))
        pairs = [("web", "intranet"), ("api", "intranet"), ("web", "internet")]
        doc = measure_replica(r, cases=(), pairs=pairs)
    finally:
        netns.down(prefix)
    rows = {(s, d): row for s, d, *row in _rows(r, doc)}
    assert rows[("web", "intranet")] == ["reply lost", "198.18.0.2", "reply lost", "198.18.0.2"]
    assert rows[("api", "intranet")] == ["reply lost", "198.18.1.2", "reply lost", "198.18.1.2"]
    assert rows[("web", "internet")] == ["round trip", "198.18.2.2", "round trip", "198.18.2.2"]
    obs = doc.pairs[0].observed
    assert obs.served > 0 and obs.send_errors > 0  # requests arrived, replies had no route


def test_docker_default_misdelivers_in_the_kernel_as_in_the_model():
    prefix = f"pnd-{PID}-"
    netns.down(prefix)
    r = load_replica(DOCKER, prefix=prefix)
    build(r)
    try:
        assert verify(r) == []
        pairs = [p for p in endpoint_pairs(r.cluster) if "/" not in p[0]]
        doc = measure_replica(r, cases=(), pairs=pairs)
    finally:
        netns.down(prefix)
    misdelivered = 0
    for p in doc.pairs:
        mo = model_outcome(r.cluster, p.src, p.dst)
        assert p.observed.outcome == mo.outcome, (p.src, p.dst, p.observed, mo)
        if mo.outcome == "misdelivered":
            misdelivered += 1
            assert p.observed.delivered_to == mo.delivered_to, (p.src, p.dst)
    by_pair = {(p.src, p.dst): p.observed for p in doc.pairs}
    # client (node1) -> api (node2, 172.17.0.2): web on node1 owns 172.17.0.2 too and gets it
    assert by_pair[("client", "api")].outcome == "misdelivered"
    assert by_pair[("client", "api")].delivered_to == "web"
    assert misdelivered >= 6


def _misses(replica, tmp_path) -> list[str]:
    """Measure, calibrate on the default cases, compare: what misses the README's claims."""
    doc = measure_replica(replica, Timing(repeats=5, duration_s=2.0), pairs=False)
    assert all(e.ok and e.samples >= 2000 for e in doc.rtt.values()), doc.rtt
    fit = calibrate(replica.cluster, doc)
    assert fit.held_out == ("cross_node", "ext_masq")
    write_params(fit, tmp_path / "p.toml")
    res = compare(str(ARTICLE), doc, str(tmp_path / "p.toml"))
    misses = [
        f"{case} predicted {res.rtt[case].predicted_p50_us:.2f} us, measured "
        f"{res.rtt[case].measured_p50_us:.2f} us"
        for case in fit.held_out
        if abs(res.rtt[case].ratio - 1.0) > RTT_TOLERANCE
    ]
    rc = res.ratio_cross_same
    if abs(rc.ratio - 1.0) > RATIO_TOLERANCE:
        misses.append(f"cross/same predicted {rc.predicted:.3f}, measured {rc.measured:.3f}")
    return misses


def test_held_out_round_trips_are_predicted_within_the_claimed_tolerances(replica, tmp_path):
    # The README's claim: calibrated on localhost, same-node and the non-masqueraded host,
    # the model predicts the held-out cross-node and masqueraded p50 within 15 % and the
    # cross-node / same-node ratio within 10 %. Measured again before failing.
    for _ in range(ATTEMPTS):
        misses = _misses(replica, tmp_path)
        if not misses:
            break
    assert not misses, f"in each of {ATTEMPTS} measurements; the last: {misses}"


def test_measure_without_replica_is_a_clear_error():
    res = CliRunner().invoke(
        testbed_cmds.testbed, ["measure", str(ARTICLE), "--prefix", f"pnm-{PID}-"]
    )
    assert res.exit_code == 2 and "no replica" in res.output and "testbed up" in res.output


def test_up_sigkill_measure_down_leaves_nothing(tmp_path):
    prefix, runner = f"pnk-{PID}-", CliRunner()
    runner.invoke(testbed_cmds.testbed, ["down", "--prefix", prefix])
    before = root_state()
    res = runner.invoke(testbed_cmds.testbed, ["up", str(ARTICLE), "--prefix", prefix])
    assert res.exit_code == 0 and "198.18.0.0/16" in res.output, res.output
    script = f"""
        from sim.cli.testbed_cmds import testbed
        testbed(["measure", {str(ARTICLE)!r}, "--prefix", {prefix!r}, "--no-pairs",
                 "--case", "cross_node", "--duration", "30", "--repeats", "1",
                 "--busy-poll", "-o", {str(tmp_path / "m.json")!r}])
    """
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(script)], cwd=ROOT, env=env)
    probes: set[int] = set()
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(probes) < 2:
            probes = {pid for info in netns.status(prefix).values() for pid in info["pids"]}
            time.sleep(0.05)
        assert len(probes) >= 2, "sockperf never started"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    assert netns.list_namespaces(prefix)  # orphaned replica and sockperf are still there
    res = runner.invoke(testbed_cmds.testbed, ["down", "--prefix", prefix])
    assert res.exit_code == 0 and "removed 9 namespaces" in res.output, res.output
    assert netns.list_namespaces(prefix) == [] and root_state() == before
    assert not [pid for pid in probes if netns._alive(pid)]  # killed (zombies are dead)
    res = runner.invoke(testbed_cmds.testbed, ["down", "--prefix", prefix])
    assert res.exit_code == 0 and "nothing to remove" in res.output
    assert not (tmp_path / "m.json").exists()


def test_failed_up_removes_its_partial_replica(monkeypatch):
    prefix = f"pnf-{PID}-"
    netns.down(prefix)
    real_run, calls = netns.run, []

    def failing_run(cmd, **kw):
        calls.append(cmd)
        if len(calls) == 15:  # after the namespaces and some links exist
            raise TestbedError("injected failure")
        return real_run(cmd, **kw)

    monkeypatch.setattr(netns, "run", failing_run)
    with pytest.raises(TestbedError, match="injected failure"):
        netns.up(load_replica(ARTICLE, prefix=prefix))
    monkeypatch.undo()
    assert netns.list_namespaces(prefix) == []
