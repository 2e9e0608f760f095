"""The UDP probe on 127.0.0.1 in the current namespace (no root needed)."""

import shutil
import threading

import pytest

from sim.testbed import ProbeError
from sim.testbed.probe import measure_pair, percentile, run_client, run_server, summarize


def test_percentile_matches_linear_interpolation():
    values = [1.0, 2.0, 3.0, 4.0]
    assert percentile(values, 0) == 1.0
    assert percentile(values, 100) == 4.0
    assert percentile(values, 50) == 2.5
    assert percentile([7.0], 99) == 7.0
    with pytest.raises(ValueError):
        percentile([], 50)


def test_summarize_units_are_microseconds():
    s = summarize([1000, 2000, 3000])
    assert s["n"] == 3
    assert s["p50_us"] == 2.0
    assert s["min_us"] == 1.0 and s["max_us"] == 3.0
    assert summarize([])["p50_us"] is None


def test_in_process_server_and_client():
    ports = []
    ready = threading.Event()
    out = {}

    def serve():
        out["server"] = run_server(
            0,
            bind="127.0.0.1",
            timeout_s=10,
            idle_timeout_s=5,
            spin=False,
            ready=lambda p: (ports.append(p), ready.set()),
        )

    thread = threading.Thread(target=serve)
    thread.start()
    assert ready.wait(5)
    res = run_client("127.0.0.1", ports[0], 50, 5, reply_timeout_s=1.0, deadline_s=10)
    thread.join(10)
    assert not thread.is_alive()
    assert res["ok"], res
    assert len(res["rtts_ns"]) == 50 and all(r > 0 for r in res["rtts_ns"])
    assert res["seen_source"] == "127.0.0.1"
    assert res["lost"] == 0
    assert out["server"]["reason"] == "bye"
    assert out["server"]["served"] >= 56


def test_client_reports_loss_when_nobody_answers():
    # Bind and close to get a port that is (almost certainly) unused.
    import socket

    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    res = run_client("127.0.0.1", port, 10, 0, hello_timeout_s=0.3)
    assert not res["ok"]
    assert res["seen_source"] is None
    assert "no hello reply" in res["error"]


def test_server_stops_by_itself_when_idle():
    res = run_server(0, bind="127.0.0.1", timeout_s=5, idle_timeout_s=0.2, spin=True)
    assert res["reason"] == "idle"
    res = run_server(0, bind="127.0.0.1", timeout_s=0.2, idle_timeout_s=5, spin=False)
    assert res["reason"] == "timeout"


@pytest.mark.skipif(
    shutil.which("taskset") is None, reason="taskset not found (apt-get install -y util-linux)"
)
def test_measure_pair_localhost_subprocesses():
    res = measure_pair(
        None, None, "127.0.0.1", n=300, warmup=30, repeats=2, timeout_s=20, reply_timeout_s=1.0
    )
    assert res["ok"]
    assert res["seen_source"] == "127.0.0.1"
    assert len(res["per_repeat"]) == 2
    lo, hi = res["spread_p50_us"]
    assert 0 < lo <= res["median_p50_us"] <= hi
    assert res["median_p99_us"] >= res["median_p50_us"]
    for rep in res["per_repeat"]:
        # a reply can miss its 1 s timeout if the busy machine deschedules the
        # spinning server; the test is about the probe's bookkeeping, not loss
        assert rep["n"] == 300 and rep["lost"] <= 15
        assert rep["server"]["reason"] == "bye"


def test_measure_pair_bounds_are_enforced():
    with pytest.raises(ValueError):
        measure_pair(None, None, "127.0.0.1", n=10, warmup=0, repeats=0)
    with pytest.raises(ValueError):
        measure_pair(None, None, "127.0.0.1", n=10**7, warmup=0, repeats=1)


def test_measure_pair_raises_when_server_cannot_start():
    # A namespace that does not exist: `ip netns exec` fails (or `ip` is
    # missing); either way the error is a one-line ProbeError, nothing hangs.
    with pytest.raises(ProbeError, match="did not start|not found"):
        measure_pair(
            None, "pnt-missing-", "127.0.0.1", n=5, warmup=0, repeats=1, hello_timeout_s=0.3
        )
