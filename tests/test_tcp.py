"""The ``tcp`` flow kind: its fields, its errors, the loss option, and RFC 6298 timing.

The theory tests (bottleneck utilisation, Mathis, fairness, slow start) are in
``tests/test_tcp_theory.py``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from sim.analysis import summarize
from sim.engine import simulate
from sim.engine.compiled.select import blocking_flow
from sim.engine.tcp import RTO_INITIAL_S, RTO_MIN_S, TcpFlow
from sim.engine.tcp_cc import Cubic, NewReno
from sim.errors import ScenarioError
from sim.spec.load import scenario_from_dict
from sim.spec.workload import Flow

MSS = 1460


def tcp_scenario(raw: dict, flows: list[dict], costs: dict | None = None):
    raw = dict(raw, flows=flows)
    if costs:
        raw["costs"] = costs
    return scenario_from_dict(raw, "tcp.toml")


# -- the spec --------------------------------------------------------------------------


def test_defaults_follow_linux_and_the_rfcs() -> None:
    f = Flow(name="t", kind="tcp", src="a", dst="b")
    assert f.cc == "cubic"  # Linux's default congestion control
    assert f.mss_bytes == 1460 and f.segment_bytes() == 1500  # 1500 B MTU - 40
    assert f.init_cwnd_segments == 10  # RFC 6928
    assert f.rcv_buf_bytes == 131072  # tcp_rmem default
    assert f.delayed_ack and f.delack_us == 40000.0  # TCP_DELACK_MIN
    assert f.streams == 1 and f.bytes is None and not f.tso
    assert f.size_choices() == ((1500,), (1.0,))


@pytest.mark.parametrize(
    ("extra", "field", "words"),
    [
        ({"size_bytes": 9000}, "flows.0", "remove size_bytes"),
        ({"rate_gbps": 1.0}, "flows.0", "takes no rate"),
        ({"rcv_buf_bytes": 1000}, "flows.0", "smaller than one segment"),
        ({"cc": "bbr"}, "flows.0.cc", "cubic"),
        ({"streams": 0}, "flows.0.streams", "greater than or equal to 1"),
        ({"streams": 1000}, "flows.0.streams", "less than or equal to 128"),
        ({"mss_bytes": 70000}, "flows.0.mss_bytes", "less than or equal"),
        ({"bytes": 0}, "flows.0.bytes", "greater than or equal to 1"),
    ],
)
def test_bad_tcp_fields_give_one_line(article_raw, extra, field, words) -> None:
    flow = {"name": "t", "kind": "tcp", "src": "client", "dst": "web", **extra}
    with pytest.raises(ScenarioError) as err:
        tcp_scenario(article_raw, [flow])
    text = str(err.value)
    assert text.startswith(f"tcp.toml: {field}: ") and words in text and "Fix:" in text
    assert "\n" not in text


@pytest.mark.parametrize("loss", [-0.1, 1.0, 2.0])
def test_loss_must_be_a_probability_below_one(article_raw, loss) -> None:
    with pytest.raises(ScenarioError) as err:
        tcp_scenario(article_raw, [], {"bridge": {"loss": loss}})
    assert str(err.value).startswith("tcp.toml: costs.bridge.loss: ")


def test_compiled_engine_names_the_tcp_flow_and_the_loss(article_raw) -> None:
    flows = [
        {"name": "p", "kind": "poisson", "src": "client", "dst": "web", "load": 0.1},
        {"name": "bulk-tcp", "kind": "tcp", "src": "api", "dst": "web"},
    ]
    field, why = blocking_flow(tcp_scenario(article_raw, flows))
    assert field == "flows.1.kind" and "'bulk-tcp'" in why and "tcp" in why
    field, why = blocking_flow(tcp_scenario(article_raw, flows[:1], {"veth": {"loss": 0.01}}))
    assert field == "costs.veth.loss" and "SimPy" in why


# -- the loss option -------------------------------------------------------------------


def test_random_loss_rate_and_reason(article_raw) -> None:
    """Losses at a station are Bernoulli(p) per arrival: count within 4 sigma."""
    p, n_rate, dur = 0.1, 5e4, 0.1
    flows = [{"name": "u", "kind": "poisson", "src": "api", "dst": "web", "rate_pps": n_rate}]
    scn = tcp_scenario(article_raw, flows, {"external_link": {}, "gateway_link": {"loss": p}})
    res = simulate(scn, seed=5, duration_s=dur, warmup_s=0.0)
    f = summarize(res)["flows"]["u"]
    n = f["sent"] - f["in_flight"]
    lost = f["drops_by_reason"].get("random_loss", 0)
    assert set(f["drops_by_reason"]) == {"random_loss"}
    assert abs(lost - n * p) <= 4 * math.sqrt(n * p * (1 - p)), (lost, n * p)
    again = simulate(scn, seed=5, duration_s=dur, warmup_s=0.0)
    assert np.array_equal(res.packets["reason"], again.packets["reason"])  # one named stream


# -- the flow -----------------------------------------------------------------------------


def test_every_byte_arrives_once_in_order_despite_losses(article_raw) -> None:
    """With 2% random loss each connection still delivers exactly ``bytes``, and the
    run is byte-identical for a seed."""
    flow = {"name": "t", "kind": "tcp", "src": "api", "dst": "web", "bytes": 300 * MSS + 7,
            "streams": 3, "cc": "newreno"}  # fmt: skip
    scn = tcp_scenario(article_raw, [flow], {"gateway_link": {"loss": 0.02}})
    res = simulate(scn, seed=2, duration_s=3.0, warmup_s=0.0)
    st = res.flows[0].tcp
    assert st.goodput_bytes == 3 * (300 * MSS + 7)
    assert len(st.completed_s) == 3
    f = summarize(res)["flows"]["t"]
    assert f["retransmissions"] >= f["drops_by_reason"]["random_loss"] > 0
    again = simulate(scn, seed=2, duration_s=3.0, warmup_s=0.0)
    for k, col in res.packets.items():
        assert np.array_equal(col, again.packets[k], equal_nan=True), k


def test_tso_sends_super_segments(article_raw) -> None:
    """With ``tso`` data packets are whole segments up to 64 KB (44 x 1460 + 40 B)."""
    flow = {"name": "t", "kind": "tcp", "src": "client", "dst": "web", "tso": True,
            "bytes": 6850 * MSS, "rcv_buf_bytes": 1 << 22}  # fmt: skip
    res = simulate(tcp_scenario(article_raw, [flow]), seed=1, duration_s=0.05, warmup_s=0.0)
    data = ~np.asarray(res.route_is_reply)[res.packets["route"]]
    sizes = res.packets["size_bytes"][data]
    assert sizes.max() == 44 * MSS + 40
    assert np.all((sizes - 40) % MSS == 0)
    assert res.flows[0].tcp.goodput_bytes == 6850 * MSS


def test_summary_carries_tcp_metrics(article_raw) -> None:
    flow = {"name": "t", "kind": "tcp", "src": "api", "dst": "web"}
    res = simulate(tcp_scenario(article_raw, [flow]), seed=1, duration_s=0.01, warmup_s=0.002)
    f = summarize(res)["flows"]["t"]
    assert f["kind"] == "tcp"
    assert f["throughput_gbps"] == pytest.approx(res.flows[0].tcp.goodput_bytes * 8 / 0.008 / 1e9)
    assert f["throughput_gbps"] > 1.0
    assert f["retransmissions"] == 0 and f["timeouts"] == 0
    assert 0 < f["srtt_p50_us"] and 0 < f["srtt_mean_us"] < 1000


# -- RFC 6298 --------------------------------------------------------------------------


def drop_once(monkeypatch, which) -> list[float]:
    """Make the network lose, once, the data segment for which ``which(seq, end)`` holds.

    Returns a list that receives the drop time. The drop goes through the
    network's own drop path (the sender is not told).
    """
    dropped: list[float] = []
    original = TcpFlow._segment_arrived

    def arrived(self, pkt, t):
        sender, seq, end = self.seg[pkt]
        if not dropped and which(seq, end, sender.total):
            dropped.append(t)
            self.net.drop(pkt, t, self.net.rec.reason_id("test: lost once"))
            return
        original(self, pkt, t)

    monkeypatch.setattr(TcpFlow, "_segment_arrived", arrived)
    return dropped


def data_and_acks(res):
    is_ack = np.asarray(res.route_is_reply)[res.packets["route"]]
    return res.packets["send_s"][~is_ack], res.packets["done_s"][is_ack]


def test_a_lost_only_segment_is_resent_after_the_initial_rto(article_raw, monkeypatch) -> None:
    """No RTT sample yet: RTO = 1 s (RFC 6298 2.1), counted from the send."""
    drop_once(monkeypatch, lambda seq, end, total: True)
    flow = {"name": "t", "kind": "tcp", "src": "api", "dst": "web", "bytes": 1000,
            "start_s": 0.001}  # fmt: skip
    res = simulate(tcp_scenario(article_raw, [flow]), seed=1, duration_s=1.5, warmup_s=0.0)
    sends, _ = data_and_acks(res)
    assert sends.tolist() == [0.001, 0.001 + RTO_INITIAL_S]
    st = res.flows[0].tcp
    assert len(st.timeout_s) == 1 and st.goodput_bytes == 1000


@pytest.mark.parametrize("one_way_us", [0.0, 300_000.0])
def test_a_lost_last_segment_is_resent_at_the_rfc6298_time(
    article_raw, monkeypatch, one_way_us
) -> None:
    """The last segment lost, nothing after it: no duplicate ACKs, so the timer fires.

    RFC 6298 (5.3) restarts the timer at the last ACK of new data, so the resend
    is at that ACK + RTO, RTO = max(200 ms, SRTT + 4 RTTVAR) (Linux's minimum).
    RTTVAR is recomputed here from the sender's SRTT series (each sample
    R_n = 8 SRTT_n - 7 SRTT_(n-1)), by RFC 6298 (2.2), (2.3). On the short path
    SRTT + 4 RTTVAR is microseconds, so the 200 ms minimum applies; with 300 ms of
    propagation on the (data-only) external link, SRTT + 4 RTTVAR is above it and applies.
    """
    drop_once(monkeypatch, lambda seq, end, total: end == total)
    flow = {"name": "t", "kind": "tcp", "src": "intranet", "dst": "web",
            "bytes": 20 * MSS, "delayed_ack": False}  # fmt: skip
    costs = {"external_link": {"propagation_us": one_way_us}}
    res = simulate(tcp_scenario(article_raw, [flow], costs), seed=1, duration_s=3.0, warmup_s=0.0)
    sends, acks_done = data_and_acks(res)
    resend = sends.max()
    assert np.sum(sends == resend) == 1 and len(sends) == 21
    st = res.flows[0].tcp
    srtt = np.asarray(st.srtt_s)
    samples = np.concatenate([[srtt[0]], 8 * srtt[1:] - 7 * srtt[:-1]])
    s, var = samples[0], samples[0] / 2
    for r in samples[1:]:
        var = 0.75 * var + 0.25 * abs(s - r)
        s = 0.875 * s + 0.125 * r
    assert s == pytest.approx(srtt[-1], rel=1e-9)
    rto = max(RTO_MIN_S, s + 4 * var)
    assert (rto > RTO_MIN_S) == (one_way_us > 0)
    last_ack = acks_done[acks_done < resend].max()
    assert resend == pytest.approx(last_ack + rto, abs=1e-9)
    assert len(st.timeout_s) == 1 and st.goodput_bytes == 20 * MSS


# -- CUBIC (RFC 9438) ------------------------------------------------------------------


def test_cubic_decrease_k_and_fast_convergence() -> None:
    """beta = 0.7; K = cbrt(W_max (1 - beta) / C) (RFC 9438 eq. 2); W_cubic(K) = W_max;
    a loss below the last W_max releases bandwidth: W_max = cwnd (1 + beta) / 2."""
    cc = Cubic(MSS, 100 * MSS)
    cc.ssthresh = 50 * MSS  # in congestion avoidance
    cc.on_loss(100 * MSS, 1.0)
    assert cc.ssthresh == pytest.approx(70 * MSS) and cc.w_max == 100
    cc.cwnd = cc.ssthresh
    cc.on_ack(MSS, 2.0, 0.0)  # opens the epoch at t = 2 s
    assert cc.k_s == pytest.approx(math.cbrt(100 * 0.3 / 0.4), rel=1e-12)
    assert cc.w_cubic(cc.k_s) == pytest.approx(100.0)
    assert cc.w_cubic(0.0) == pytest.approx(70.0)
    cc.cwnd = 90 * MSS
    cc.on_loss(90 * MSS, 3.0)
    assert cc.w_max == pytest.approx(90 * 1.7 / 2)


def test_cubic_is_reno_friendly_on_short_round_trips() -> None:
    """With a 20 us RTT the cubic curve barely moves in a window's worth of ACKs, so
    cwnd follows W_est: + 3 (1 - beta) / (1 + beta) segments per window acknowledged
    (RFC 9438 section 4.3)."""
    cc = Cubic(MSS, 10 * MSS)
    cc.cwnd, cc.ssthresh, cc.w_max = 40 * MSS, 40 * MSS, 50.0
    t = 5.0
    for _ in range(40):
        cc.on_ack(MSS, t, 20e-6)
        t += 0.5e-6
    alpha = 3 * 0.3 / 1.7
    assert cc.cwnd / MSS == pytest.approx(40 + alpha, rel=0.02)


def test_timeout_sets_one_segment_and_keeps_ssthresh_rule() -> None:
    for cls, factor in ((NewReno, 0.5), (Cubic, 0.7)):
        cc = cls(MSS, 10 * MSS)
        cc.cwnd = 60 * MSS
        cc.on_timeout(60 * MSS, 1.0)
        assert cc.cwnd == MSS and cc.ssthresh == pytest.approx(60 * MSS * factor)


# -- iperf3 on the replica (parsing only; the measurement needs root) ----------------------


def test_parse_iperf3_reads_the_receivers_goodput() -> None:
    import json

    from sim.testbed.errors import ProbeError
    from sim.testbed.iperf import parse_iperf3

    doc = {"end": {"streams": [{}, {}], "sum_sent": {"bits_per_second": 2.1e9, "retransmits": 3},
                   "sum_received": {"bits_per_second": 2.0e9}}}  # fmt: skip
    assert parse_iperf3(json.dumps(doc)) == {
        "goodput_gbps": 2.0,
        "retransmissions": 3,
        "streams": 2,
    }
    for bad in ("not json", json.dumps({"error": "unable to connect"}), json.dumps({"end": {}})):
        with pytest.raises(ProbeError):
            parse_iperf3(bad)


# -- delayed ACKs and NewReno recovery -----------------------------------------------------


def packets_of(res):
    is_ack = np.asarray(res.route_is_reply)[res.packets["route"]]
    p = res.packets
    return (p["send_s"][~is_ack], p["done_s"][~is_ack]), (p["send_s"][is_ack], p["done_s"][is_ack])


@pytest.mark.parametrize(("delayed", "acks"), [(True, 10), (False, 20)])
def test_one_ack_per_two_full_segments(article_raw, delayed, acks) -> None:
    flow = {"name": "t", "kind": "tcp", "src": "api", "dst": "web", "bytes": 20 * MSS,
            "delayed_ack": delayed}  # fmt: skip
    res = simulate(tcp_scenario(article_raw, [flow]), seed=1, duration_s=0.01, warmup_s=0.0)
    (data_sent, _), (ack_sent, _) = packets_of(res)
    assert len(data_sent) == 20 and len(ack_sent) == acks


def test_a_lone_segment_is_acknowledged_after_the_delayed_ack_timer(article_raw) -> None:
    """IW = 1: the first segment waits ``delack_us`` (Linux: 40 ms) for its ACK
    (RFC 5681 4.2: at most 500 ms, and every second full segment at once)."""
    flow = {"name": "t", "kind": "tcp", "src": "api", "dst": "web", "bytes": 3 * MSS,
            "init_cwnd_segments": 1}  # fmt: skip
    res = simulate(tcp_scenario(article_raw, [flow]), seed=1, duration_s=0.2, warmup_s=0.0)
    (_, data_done), (ack_sent, _) = packets_of(res)
    assert ack_sent[0] == pytest.approx(data_done[0] + 0.040, abs=1e-12)
    assert len(ack_sent) == 2  # then two full segments: acknowledged at once


def test_newreno_recovers_three_losses_of_one_window_without_a_timeout(
    article_raw, monkeypatch
) -> None:
    """RFC 6582: one fast retransmit for the first hole, then each partial ACK
    retransmits the next hole; no timeout, exactly one retransmission per loss."""
    lost = {5 * MSS, 9 * MSS, 14 * MSS}
    original = TcpFlow._segment_arrived

    def arrived(self, pkt, t):
        sender, seq, end = self.seg[pkt]
        if seq in lost:
            lost.discard(seq)
            self.net.drop(pkt, t, self.net.rec.reason_id("test: lost once"))
            return
        original(self, pkt, t)

    monkeypatch.setattr(TcpFlow, "_segment_arrived", arrived)
    flow = {"name": "t", "kind": "tcp", "src": "api", "dst": "web", "bytes": 60 * MSS,
            "cc": "newreno", "init_cwnd_segments": 20}  # fmt: skip
    res = simulate(tcp_scenario(article_raw, [flow]), seed=1, duration_s=0.05, warmup_s=0.0)
    st = res.flows[0].tcp
    assert not lost and st.timeout_s == [] and len(st.retransmit_s) == 3
    assert st.goodput_bytes == 60 * MSS and st.completed_s[0] < 0.01


# -- bench: one SimPy event per segment-hop ------------------------------------------------


def test_bench_tcp_cases_take_one_simpy_event_per_segment_hop() -> None:
    """The issue's rule: a tcp flow stays one SimPy event per packet-hop (per
    super-segment-hop with TSO); timers add a few events per connection, not per
    segment. Counts, not speed (speed is never asserted). The events counted are
    those scheduled, so each packet still in flight at the end adds one: at most a
    receive window of segments (90) and their ACKs, whatever the run's length."""
    from sim.bench import _tcp_cases

    cases = _tcp_cases(0.002, 1, [1.0])
    plain, tso = cases["tcp"], cases["tcp_tso"]
    for c in (plain, tso):
        assert c["packet_hops"] >= 8 * c["packets"] * 0.9  # ~10 stations each way
        extra = c["simpy_events"] - c["packet_hops"]
        assert 0 <= extra <= 2 * math.ceil(131072 / MSS) + 10, c
    assert plain["events_per_packet_hop"] <= 1.01
    assert tso["packets"] * 10 < plain["packets"]  # 64 KB super-segments
