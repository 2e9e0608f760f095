"""The cwnd/goodput time series of tcp flows (``record_cwnd``) against RFC 5681 and RFC 9438.

The path: external host ``intranet`` to ``web``, with 100 ms of propagation on
the (data-only) external link and fast links elsewhere, so the round trip is
100 ms plus microseconds and no queue ever forms: the window alone sets what is
sent. One segment is lost on purpose (the others never are), so there is exactly
one congestion event.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from sim.analysis.tcp_series import series_rows
from sim.engine import simulate
from sim.engine.tcp import TcpFlow
from sim.errors import ScenarioError
from sim.spec.load import scenario_from_dict

MSS = 1460
RTT_S = 0.1
C = 0.4  # RFC 9438 section 5
BETA = 0.7


def scenario(raw: dict, extra: dict | None = None, duration_s: float = 1.0):
    flow = {"name": "t", "kind": "tcp", "src": "intranet", "dst": "web",
            "rcv_buf_bytes": 1 << 26, "record_cwnd": True,
            "series_interval_us": RTT_S / 2 * 1e6, **(extra or {})}  # fmt: skip
    raw = dict(raw, flows=[flow], costs={"external_link": {"propagation_us": RTT_S * 1e6}})
    raw["simulation"] = dict(raw["simulation"], duration_s=duration_s, warmup_s=0.0)
    return scenario_from_dict(raw, "series.toml")


def lose_once(monkeypatch, seq_lost: int) -> None:
    """Drop the first transmission of the data segment starting at ``seq_lost``."""
    lost = {seq_lost}
    original = TcpFlow._segment_arrived

    def arrived(self, pkt, t):
        _, seq, _ = self.seg[pkt]
        if seq in lost:
            lost.discard(seq)
            self.net.drop(pkt, t, self.net.rec.reason_id("test: lost once"))
            return
        original(self, pkt, t)

    monkeypatch.setattr(TcpFlow, "_segment_arrived", arrived)


def test_slow_start_doubles_window_and_goodput_every_round_trip(article_raw) -> None:
    """Intervals of RTT/2: at the middle of round k the window is 10 x 2^k segments
    (IW10, RFC 6928; RFC 3465 with L = 2 and delayed ACKs), and the payload
    delivered in round k + 1 (its two intervals) is the window of round k (the
    data side holds the 100 ms of propagation, the ACKs return at once)."""
    res = simulate(scenario(article_raw), seed=1)
    df = pd.DataFrame(series_rows(res))
    assert list(df.columns) == ["flow", "stream", "time_s", "cwnd_bytes", "goodput_gbps"]
    assert len(df) == 20 and (df["flow"] == "t").all() and (df["stream"] == 0).all()
    assert np.allclose(df["time_s"], np.arange(1, 21) * RTT_S / 2)
    mid = df["cwnd_bytes"].to_numpy()[0::2] / MSS  # at (k + 1/2) RTT
    assert mid[:8].tolist() == [10 * 2**k for k in range(8)]
    per_round = df["goodput_gbps"].to_numpy().reshape(-1, 2).sum(axis=1) * 1e9 * RTT_S / 2 / 8
    assert per_round[0] == 0
    assert np.allclose(per_round[1:9] / MSS, [10 * 2**k for k in range(8)])
    total = (df["goodput_gbps"] * 1e9 * RTT_S / 2 / 8).sum()
    assert total == pytest.approx(res.flows[0].tcp.goodput_bytes)


def test_cubic_window_follows_the_cubic_function_after_a_loss(article_raw, monkeypatch) -> None:
    """After one loss the window follows W(t) = C (t - K)^3 + W_max (RFC 9438 eq. 1),
    K = cbrt(W_max (1 - beta) / C) (eq. 2), t from the start of congestion avoidance.

    W_max is the window when the loss was found (the last one recorded before the
    fast retransmit); avoidance starts at the full ACK that ends fast recovery (the
    window falls to at most beta x W_max). The path never queues, so the only error
    is how the window is reached: each ACK moves it towards W(t + RTT) (section
    4.4), so it lies between W(t) and W(t + RTT), plus a segment of rounding: the
    tolerance at t is max |W'| over [t, t + RTT] x RTT + 1 segment. Checked every
    RTT/2 from 1 s into avoidance to 1.4 K (concave, plateau and convex regions).
    """
    lose_once(monkeypatch, 100 * MSS)
    res = simulate(scenario(article_raw, duration_s=8.0), seed=1)
    st = res.flows[0].tcp
    assert len(st.retransmit_s) == 1 and st.timeout_s == []
    t_loss = st.retransmit_s[0]
    at, cwnd = np.asarray(st.cwnd_at_s), np.asarray(st.cwnd_bytes) / MSS
    w_max = cwnd[at < t_loss][-1]
    after = (at > t_loss) & (cwnd <= BETA * w_max + 1e-9)
    t_epoch = at[after][0]
    k = math.cbrt(w_max * (1 - BETA) / C)
    assert 3.5 < k < 6.5 and t_epoch < t_loss + 2 * RTT_S
    df = pd.DataFrame(series_rows(res))
    t = df["time_s"].to_numpy() - t_epoch
    check = (t >= 1.0) & (t <= 1.4 * k)
    t, got = t[check], df["cwnd_bytes"].to_numpy()[check] / MSS
    want = C * (t - k) ** 3 + w_max
    slope = 3 * C * np.maximum((t - k) ** 2, (t + RTT_S - k) ** 2)
    tol = slope * RTT_S + 1.0
    assert np.all(np.abs(got - want) <= tol), np.max(np.abs(got - want) - tol)
    assert got.size > 2 * k / RTT_S  # the whole span was checked
    # the check can fail: NewReno's line (+1 segment per RTT) misses it by far
    reno = BETA * w_max + t / RTT_S
    assert np.any(np.abs(reno - want) > tol)


def test_a_series_too_long_is_refused_before_the_run(article_raw) -> None:
    scn = scenario(article_raw, {"series_interval_us": 0.01}, duration_s=100.0)
    with pytest.raises(ScenarioError) as err:
        simulate(scn, seed=1, file="series.toml")
    text = str(err.value)
    assert text.startswith("series.toml: flows.0.series_interval_us: ")
    assert "Fix: give series_interval_us >= " in text and "\n" not in text


def test_request_response_series_is_the_requests_direction(article_raw) -> None:
    flow = {"name": "rr", "kind": "request-response", "transport": "tcp", "src": "client",
            "dst": "web", "size_bytes": 3 * MSS, "reply_bytes": 100, "streams": 2,
            "record_cwnd": True, "series_interval_us": 1000.0}  # fmt: skip
    scn = scenario_from_dict(dict(article_raw, flows=[flow]), "rr.toml")
    res = simulate(scn, seed=1, duration_s=0.005, warmup_s=0.0)
    df = pd.DataFrame(series_rows(res))
    assert sorted(set(df["stream"])) == [0, 1] and len(df) == 10
    got_bytes = (df["goodput_gbps"] * 1e9 * 1e-3 / 8).sum()
    assert got_bytes == pytest.approx(3 * MSS * len(res.flows[0].rtt_s), abs=2 * 3 * MSS)
    assert (df["cwnd_bytes"] >= 10 * MSS).all()  # never a loss: slow start only


# -- the results table, the figure and the report --------------------------------------

EXPERIMENT = """
name = "series-demo"
description = "a tcp flow's window and a TCP request/response flow"
question = "Does the series reach the results, the figure and the report?"
scenario = "{scenario}"
replications = 2
duration_s = 0.003
warmup_s = 0.001
seed = 3
replace_flows = true

[[flows]]
name = "rr"
kind = "request-response"
transport = "tcp"
size_bytes = 100
reply_bytes = 2000

[[flows]]
name = "bulk"
kind = "tcp"
streams = 2
record_cwnd = true
series_interval_us = 500

[sweep]
placement = ["same-node", "cross-node"]
"""


def test_batch_writes_the_series_table_its_figure_and_report(tmp_path, article_path) -> None:
    """tcp_series.parquet: one row per (run, connection, interval) with the run's
    identity and parameters; the figure is drawn and the report embeds it; a resume
    of the finished batch rewrites the same table from the stored runs."""
    from sim.api import load_results, run_experiment
    from sim.report.build import build_report

    exp = tmp_path / "e.toml"
    exp.write_text(EXPERIMENT.format(scenario=article_path), encoding="utf-8")
    out = run_experiment(exp, tmp_path / "out")
    tables = load_results(out)
    s = tables["tcp_series"]
    ids = ["run_id", "config", "replication", "seed", "placement"]
    assert list(s.columns) == [*ids, "flow", "stream", "time_s", "cwnd_bytes", "goodput_gbps"]
    assert len(s) == 4 * 2 * 6 and set(s["flow"]) == {"bulk"}
    runs = tables["runs"].set_index(["run_id", "flow"])
    window = s[s["time_s"] > 0.001].groupby("run_id")["goodput_gbps"].sum() / 4
    for run_id, gbps in window.items():  # the series adds up to the run's goodput
        assert gbps == pytest.approx(runs.loc[(run_id, "bulk"), "throughput_gbps"], rel=1e-9)
    rr = tables["runs"][tables["runs"]["flow"] == "rr"]
    assert (rr["rtt_mean_us"] > 0).all() and (rr["transactions_per_s"] > 0).all()
    assert (out / "plots" / "tcp-series.png").is_file()
    assert "tcp-series" in build_report(out).read_text(encoding="utf-8")
    before = (out / "tcp_series.parquet").read_bytes()
    (out / "tcp_series.parquet").unlink()
    run_experiment(exp, out, resume=True, plots=False)
    assert (out / "tcp_series.parquet").read_bytes() == before


def test_a_window_the_receiver_limits_stops_growing(article_raw) -> None:
    """Linux grows cwnd only while it limits sending (tcp_is_cwnd_limited: in slow
    start while cwnd < 2 x the largest flight of the window). A 128 KiB receive
    buffer (90 segments) holds the flight, so cwnd stops under 2 x 128 KiB + 2 MSS
    (one ACK's growth past it), instead of growing by every ACK for the whole run.
    A request/response flow of one-segment messages never fills IW10: it keeps it."""
    scn = scenario(article_raw, {"rcv_buf_bytes": 131072}, duration_s=2.0)
    res = simulate(scn, seed=1)
    cwnd = np.asarray(res.flows[0].tcp.cwnd_bytes)
    assert cwnd.max() <= 2 * 131072 + 2 * MSS
    assert cwnd.max() >= 131072  # it did grow to the receive window
    flow = {"name": "rr", "kind": "request-response", "transport": "tcp", "src": "client",
            "dst": "web", "size_bytes": 100, "reply_bytes": 100, "record_cwnd": True}  # fmt: skip
    rr = scenario_from_dict(dict(article_raw, flows=[flow]), "rr.toml")
    res = simulate(rr, seed=1, duration_s=0.002, warmup_s=0.0)
    assert len(res.flows[0].rtt_s) > 100
    assert set(res.flows[0].tcp.cwnd_bytes) == {10.0 * MSS}
