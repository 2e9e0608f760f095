"""Request/response over TCP (``transport = "tcp"``) against exact sums and MVA.

* An idle deterministic path: every transaction's round trip is the sum of the
  service and propagation times of the request's segment one way and the
  response's the other (the ACKs ride on the data: two packets a transaction),
  and transactions per second = 1 / RTT.
* N connections through shared exponential stations: a closed queueing network
  of product form (BCMP 1975: FCFS stations with exponential service of the same
  mean for every visit, propagation and think time as delay stations), whose mean
  round trip and throughput exact Mean Value Analysis gives (Reiser and Lavenberg
  1980). The tolerance is the batch-means interval of the run (as in
  ``tests/test_engine_workloads.py``).
* Delayed ACKs: two full segments are acknowledged at once; a response left
  unanswered for longer than ``delack_us`` is acknowledged by the timer.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from sim.analysis import summarize
from sim.control import build_cluster
from sim.control.resolve import resolve, resolve_reply
from sim.engine import simulate
from sim.errors import ScenarioError
from sim.spec.costs import Costs
from sim.spec.load import scenario_from_dict

MSS = 1460
HDR = 40


def rr_flow(**extra) -> dict:
    flow = {"name": "rr", "kind": "request-response", "transport": "tcp",
            "src": "client", "dst": "web", "size_bytes": 100, "reply_bytes": 300}  # fmt: skip
    return flow | extra


def scenario(raw: dict, flows: list[dict], costs: dict | None = None):
    raw = dict(raw, flows=flows)
    if costs:
        raw["costs"] = costs
    return scenario_from_dict(raw, "rr.toml")


def visits(path, size_bytes: int, costs: Costs) -> list[tuple[str, float, float]]:
    """(station, mean service us, propagation us) of each hop of ``path``."""
    out = []
    for h in path.hops:
        c = getattr(costs, h.kind)
        nat = costs.nat_extra_us if h.nat else 0.0
        out.append((h.station, c.mean_service_us(size_bytes) + nat, c.propagation_us))
    return out


def paths(scn, src: str, dst: str):
    cl = build_cluster(scn, "rr.toml")
    fwd = resolve(cl, src, dst)
    rep = resolve_reply(cl, fwd)
    assert fwd.verdict == rep.verdict == "delivered"
    return fwd, rep


# -- the spec ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        ({"kind": "tcp", "size_bytes": 1500}, "applies to request-response"),
        ({"outstanding": 4}, "give streams = 4"),
        ({"size_bytes": "imix"}, "one request size"),
        ({"bytes": 1000}, "remove bytes"),
        ({"rcv_buf_bytes": 100}, "smaller than one segment"),
    ],
)
def test_bad_tcp_request_response_gives_one_line(article_raw, extra, words) -> None:
    flow = rr_flow(**extra)
    if flow["kind"] == "tcp":
        flow.pop("size_bytes")
        flow.pop("reply_bytes")
    with pytest.raises(ScenarioError) as err:
        scenario(article_raw, [flow])
    text = str(err.value)
    assert text.startswith("rr.toml: flows.0: ") and words in text and "Fix:" in text
    assert "\n" not in text


# -- an idle path: exact ------------------------------------------------------------------


@pytest.mark.parametrize("dst", ["web", "api", "internet"])
def test_rtt_on_an_idle_path_is_the_sum_of_both_ways(article_raw, dst: str) -> None:
    """One connection, one-segment messages: RTT = the request's segment through the
    forward path + the response's through the reply path, exactly; 2 packets a
    transaction (each ACK piggybacked); transactions/s = 1 / RTT."""
    req, rep = 100, 300
    scn = scenario(article_raw, [rr_flow(dst=dst, size_bytes=req, reply_bytes=rep)])
    fwd, back = paths(scn, "client", dst)
    rtt_us = sum(s + p for _, s, p in visits(fwd, req + HDR, scn.costs))
    rtt_us += sum(s + p for _, s, p in visits(back, rep + HDR, scn.costs))
    t0, t1 = 0.001, 0.01
    res = simulate(scn, seed=1, duration_s=t1, warmup_s=t0)
    rtts = np.asarray(res.flows[0].rtt_s) * 1e6
    assert rtts.size > 100
    assert np.max(np.abs(rtts - rtt_us)) < 1e-6
    f = summarize(res)["flows"]["rr"]
    assert abs(f["transactions_per_s"] * (t1 - t0) - (t1 - t0) / (rtt_us * 1e-6)) <= 1
    assert abs(f["rtt_us"]["mean"] - rtt_us) < 1e-6 and f["retransmissions"] == 0
    sizes = res.packets["size_bytes"]
    assert set(np.unique(sizes)) == {req + HDR, rep + HDR}  # no pure ACK at all
    assert abs(f["srtt_mean_us"] - rtt_us) < 1e-6  # the client's SRTT is the transaction


def test_tcp_transactions_equal_udp_ones_for_one_segment_messages(article_raw) -> None:
    """With every ACK piggybacked, TCP_RR of one-segment messages puts the same packets
    on the path as the UDP request-response of the same IP sizes: identical RTTs."""
    costs = {k: {"service": "exponential"} for k in ("veth", "bridge", "forward")}
    tcp = scenario(article_raw, [rr_flow(streams=3)], costs)
    udp = scenario(article_raw, [{"name": "rr", "kind": "request-response", "src": "client",
                   "dst": "web", "size_bytes": 140, "reply_bytes": 340, "outstanding": 3}],
                   costs)  # fmt: skip
    a = simulate(tcp, seed=7, duration_s=0.005, warmup_s=0.0)
    b = simulate(udp, seed=7, duration_s=0.005, warmup_s=0.0)
    assert len(a.flows[0].rtt_s) > 1000
    assert np.array_equal(a.flows[0].rtt_s, b.flows[0].rtt_s)


# -- delayed ACKs -----------------------------------------------------------------------


def test_two_full_segments_are_acknowledged_at_once(article_raw) -> None:
    """A 2-segment response: the client ACKs it at once (RFC 5681 4.2: every second
    full segment), so each transaction is 1 + 2 data segments and 1 pure ACK."""
    scn = scenario(article_raw, [rr_flow(reply_bytes=2 * MSS)])
    res = simulate(scn, seed=1, duration_s=0.002, warmup_s=0.0)
    n = len(res.flows[0].rtt_s)
    sizes = res.packets["size_bytes"]
    assert n > 100
    assert abs(int((sizes == HDR).sum()) - n) <= 1
    assert abs(int((sizes == MSS + HDR).sum()) - 2 * n) <= 2


def test_an_idle_client_acknowledges_after_the_delayed_ack_timer(article_raw) -> None:
    """Thinking 50 ms > delack_us (40 ms): the response's ACK is a pure ACK sent
    exactly 40 ms after the response arrived; the next request carries no news."""
    scn = scenario(article_raw, [rr_flow(think_us=50_000.0)])
    res = simulate(scn, seed=1, duration_s=0.3, warmup_s=0.0)
    p = res.packets
    acks = np.flatnonzero(p["size_bytes"] == HDR)
    done = np.asarray(res.flows[0].rtt_done_s)
    assert len(done) == 6 and len(acks) == 6
    assert np.allclose(p["send_s"][acks], done + 0.04, rtol=0, atol=1e-12)


# -- N connections: Mean Value Analysis ----------------------------------------------------


def mva(demand_s: dict[str, float], delay_s: float, n: int) -> tuple[float, float]:
    """Exact MVA of a closed single-class network: (throughput /s, mean cycle time s)
    with ``n`` customers, FCFS stations of total demand ``demand_s`` per cycle and a
    delay of ``delay_s`` (Reiser and Lavenberg 1980)."""
    q = dict.fromkeys(demand_s, 0.0)
    x = r = 0.0
    for k in range(1, n + 1):
        resid = {s: d * (1.0 + q[s]) for s, d in demand_s.items()}
        r = sum(resid.values())
        x = k / (delay_s + r)
        q = {s: x * v for s, v in resid.items()}
    return x, r + delay_s


@pytest.mark.parametrize("n", [1, 4, 8])
def test_n_connections_match_mean_value_analysis(article_raw, n: int) -> None:
    """Requests and responses of 100 B payload (140 B packets, so each visit to a
    station has the same mean service), exponential service everywhere, client on
    node1 to api on node2: bridges and forward stages are visited twice a cycle.

    Tolerance: 99 % batch-means interval of the RTT samples (30 batches, widened
    1.5x), which must itself be under 3 % of the prediction so a wrong model fails.
    """
    kinds = ("veth", "bridge", "forward", "eth0_tx", "eth0_rx", "gateway", "gateway_link")
    costs = {k: {"service": "exponential", "buffer_packets": "unlimited"} for k in kinds}
    scn = scenario(article_raw, [rr_flow(dst="api", reply_bytes=100, streams=n)], costs)
    fwd, back = paths(scn, "client", "api")
    demand: dict[str, float] = {}
    delay_us = 0.0
    for name, s_us, p_us in visits(fwd, 140, scn.costs) + visits(back, 140, scn.costs):
        demand[name] = demand.get(name, 0.0) + s_us * 1e-6
        delay_us += p_us
    x, cycle_s = mva(demand, delay_us * 1e-6, n)
    t0, t1 = 0.002, 0.042
    res = simulate(scn, seed=11, duration_s=t1, warmup_s=t0)
    done = np.asarray(res.flows[0].rtt_done_s)
    rtt = np.asarray(res.flows[0].rtt_s)[done >= t0]
    k = 30
    m = rtt[: rtt.size // k * k].reshape(k, -1).mean(axis=1)
    half = 1.5 * stats.t.ppf(0.995, k - 1) * m.std(ddof=1) / math.sqrt(k)
    assert half < 0.03 * cycle_s
    assert abs(m.mean() - cycle_s) <= half, (m.mean() * 1e6, cycle_s * 1e6, half * 1e6)
    tps = summarize(res)["flows"]["rr"]["transactions_per_s"]
    assert abs(tps - x) / x <= half / cycle_s + n / (x * (t1 - t0)), (tps, x)


# -- losses and the work estimate -------------------------------------------------------


def test_a_lost_message_is_recovered_at_the_rto(article_raw) -> None:
    """2 % loss at the gateway link (client on node1 to api on node2): a one-segment
    message that is lost has no later data to raise duplicate ACKs, so its sender's
    RTO resends it 200 ms (Linux's minimum, RFC 6298 with no sample near it) after
    it was sent. Each round trip is the idle one, or the idle one plus 200 ms times
    a sum of backed-off timeouts; every transaction completes."""
    costs = {"gateway_link": {"loss": 0.02}}
    scn = scenario(article_raw, [rr_flow(dst="api")], costs)
    res = simulate(scn, seed=3, duration_s=5.0, warmup_s=0.0)
    rtt = np.asarray(res.flows[0].rtt_s)
    base = rtt.min()
    extra = (rtt - base) / 0.2
    late = extra > 1e-6
    assert 10 < late.sum() < rtt.size / 2
    assert np.all(extra[late] >= 1 - 1e-6)  # never recovered before the minimum RTO
    assert np.any(np.abs(extra - 1) < 1e-6)  # one timeout: exactly 200 ms later
    f = summarize(res)["flows"]["rr"]
    assert f["timeouts"] >= late.sum() * 0.5 and f["retransmissions"] >= f["timeouts"]
    # the connection never stalls: the last transaction ended within the last 2 s
    assert res.flows[0].rtt_done_s[-1] > 3.0


@pytest.mark.parametrize(
    ("extra", "costs", "duration_s"),
    [
        ({}, None, 0.01),
        ({"reply_bytes": 5000, "streams": 3}, None, 0.01),
        ({"think_us": 50_000.0}, None, 0.3),
        ({"dst": "api"}, {"gateway_link": {"loss": 0.05}}, 0.3),
    ],
)
def test_work_estimate_bounds_the_packets(article_raw, extra, costs, duration_s) -> None:
    """The estimate is at least what the run sends, and within 10x of it on a lossless
    path (a lossy one spends most of its time waiting for timeouts); 10x, not 3x:
    three connections queue behind each other on a shared path."""
    from sim.engine.budget import estimate_work

    scn = scenario(article_raw, [rr_flow(**extra)], costs)
    est = estimate_work(scn, duration_s=duration_s).packets
    res = simulate(scn, seed=2, duration_s=duration_s, warmup_s=0.0)
    sent = res.packets["send_s"].size
    assert sent <= est, (sent, est)
    if costs is None:
        assert est <= 10 * sent + 20, (sent, est)
