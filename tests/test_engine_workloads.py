"""Traffic sources: constant, on/off, IMIX sizes, Gbit/s rates, request-response, bulk.

Statistical claims use the batch-means confidence interval described in
``tests/test_engine_queueing.py``: K = 30 consecutive batches, 99% t-interval
widened by 1.5 (covers a lag-1 correlation of the batch means up to 0.6), plus a
check that the interval is narrow enough to detect the error being tested for.
An on/off batch spans 33 ms, i.e. >= 75 ON/OFF cycles, so batch counts are nearly
independent; Poisson counts in disjoint batches are independent by definition.
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
from sim.spec.costs import Costs
from sim.spec.load import scenario_from_dict
from sim.spec.workload import IMIX_SIZES_BYTES, IMIX_WEIGHTS, Flow

K_BATCHES = 30
LEVEL = 0.99
WIDEN = 1.5
IMIX_MEAN = (7 * 40 + 4 * 576 + 1500) / 12


def batch_ci(values, k: int = K_BATCHES, level: float = LEVEL):
    """(mean, widened half-width) of the batch-means t-interval."""
    values = np.asarray(values, dtype=float)
    n = values.size // k * k
    means = values[:n].reshape(k, -1).mean(axis=1)
    half = stats.t.ppf(0.5 + level / 2, k - 1) * means.std(ddof=1) / math.sqrt(k)
    return float(means.mean()), WIDEN * float(half)


def run_flows(raw: dict, flows: list[dict], duration_s: float, warmup_s: float = 0.0, seed=4):
    raw = dict(raw)
    raw["flows"] = flows
    scn = scenario_from_dict(raw, "article.toml")
    return simulate(scn, seed=seed, duration_s=duration_s, warmup_s=warmup_s)


def rate_per_batch(send_s: np.ndarray, t0: float, t1: float, k: int = K_BATCHES):
    """Packets sent per second in each of k equal time batches of [t0, t1)."""
    counts, _ = np.histogram(send_s, bins=np.linspace(t0, t1, k + 1))
    return counts / ((t1 - t0) / k)


# -- open loop ---------------------------------------------------------------------------


def test_constant_rate_sends_rate_times_duration(article_raw) -> None:
    res = run_flows(
        article_raw,
        [
            {"name": "c", "kind": "constant", "src": "client", "dst": "web", "rate_pps": 1e5},
            {
                "name": "w",
                "kind": "constant",
                "src": "api",
                "dst": "web",
                "rate_pps": 12345.0,
                "start_s": 0.013,
                "stop_s": 0.071,
            },
        ],
        duration_s=0.1,
    )
    route_flow = np.asarray(res.route_flow)[res.packets["route"]]
    send = res.packets["send_s"]
    c = send[route_flow == 0]
    assert abs(c.size - 1e5 * 0.1) <= 1
    assert np.allclose(np.diff(c), 1e-5, rtol=0, atol=1e-15)
    w = send[route_flow == 1]
    assert abs(w.size - 12345.0 * (0.071 - 0.013)) <= 1
    assert w.min() >= 0.013 and w.max() < 0.071


@pytest.mark.parametrize(
    ("rate_pps", "on_us", "off_us", "dist"),
    [
        (2e4, 100.0, 100.0, "exponential"),  # ~1 packet per ON period
        (1e3, 100.0, 100.0, "exponential"),  # far less than 1 packet per ON period
        (2e5, 100.0, 300.0, "exponential"),
        (2e5, 150.0, 150.0, "pareto"),
    ],
)
def test_onoff_mean_rate(article_raw, rate_pps, on_us, off_us, dist) -> None:
    """Mean rate = rate * on / (on + off): packets are spaced 1/rate in ON time.

    Pareto periods use shape 3 (finite variance, so the CI is valid).
    """
    t0, t1 = 0.01, 1.0
    res = run_flows(
        article_raw,
        [{"name": "o", "kind": "onoff", "src": "client", "dst": "web", "rate_pps": rate_pps,
          "on_mean_us": on_us, "off_mean_us": off_us, "period_distribution": dist,
          "pareto_shape": 3.0, "size_bytes": 64}],
        duration_s=t1,
        warmup_s=t0,
    )  # fmt: skip
    theory = rate_pps * on_us / (on_us + off_us)
    mean, half = batch_ci(rate_per_batch(res.packets["send_s"], t0, t1))
    assert abs(mean - theory) <= half, (mean, half, theory)
    assert half <= 0.1 * theory  # detects a 10% error in the rate
    if rate_pps * on_us * 1e-6 >= 10:
        # many packets per ON period: most gaps are the ON spacing 1/rate (bursts)
        gaps = np.diff(res.packets["send_s"])
        assert np.isclose(gaps, 1 / rate_pps, rtol=1e-6).mean() > 0.5


def test_imix_sizes_and_rate_gbps(article_raw) -> None:
    """IMIX: sizes 40/576/1500 B with weights 7:4:1, mean 4084/12 B; Gbit/s -> pps."""
    flow = Flow(name="x", kind="poisson", src="a", dst="b", rate_gbps=1.0, size_bytes="imix")
    assert flow.mean_size_bytes() == pytest.approx(IMIX_MEAN, rel=1e-15)
    assert IMIX_MEAN == pytest.approx(340.333333, rel=1e-6)
    t0, t1 = 0.005, 0.105
    res = run_flows(
        article_raw,
        [{"name": "imix", "kind": "poisson", "src": "client", "dst": "web", "rate_gbps": 1.0,
          "size_bytes": "imix"}],
        duration_s=t1,
        warmup_s=t0,
    )  # fmt: skip
    pps = 1e9 / (8 * IMIX_MEAN)
    assert res.flows[0].rate_pps == pytest.approx(pps, rel=1e-12)
    assert summarize(res)["flows"]["imix"]["offered_pps"] == pytest.approx(pps, rel=1e-12)
    p = res.packets
    sizes = p["size_bytes"].astype(float)
    # sizes are independent draws: a plain t-interval (99%) for their mean
    half = stats.t.ppf(0.995, sizes.size - 1) * sizes.std(ddof=1) / math.sqrt(sizes.size)
    assert abs(sizes.mean() - IMIX_MEAN) <= half and half < 0.02 * IMIX_MEAN
    # and the three sizes in proportion 7:4:1 (chi-square at the 0.1% level)
    counts = np.array([(sizes == s).sum() for s in IMIX_SIZES_BYTES])
    assert counts.sum() == sizes.size
    expected = sizes.size * np.array(IMIX_WEIGHTS) / sum(IMIX_WEIGHTS)
    assert stats.chisquare(counts, expected).pvalue > 1e-3
    # offered bits per second: batch means of the bits sent per time batch
    inside = (p["send_s"] >= t0) & (p["send_s"] < t1)
    bins = np.linspace(t0, t1, K_BATCHES + 1)
    bits, _ = np.histogram(p["send_s"][inside], bins=bins, weights=sizes[inside] * 8)
    mean, half = batch_ci(bits / ((t1 - t0) / K_BATCHES))
    assert abs(mean - 1e9) <= half and half < 0.05 * 1e9


# -- closed loop -------------------------------------------------------------------------


def no_wait_us(path, size: int, costs: Costs) -> float:
    """Service + propagation along a path for one packet finding every queue empty."""
    total = 0.0
    for h in path.hops:
        c = getattr(costs, h.kind)
        total += c.mean_service_us(size) + c.propagation_us
        if h.nat:
            total += costs.nat_extra_us
    return total


@pytest.mark.parametrize("dst", ["api", "internet"])
def test_request_response_rtt_on_an_idle_path_is_exact(article_raw, dst: str) -> None:
    """One outstanding request: every RTT = the sum over forward and reply paths.

    ``internet`` is masqueraded: the forward path pays SNAT and the reply de-NAT
    (``nat_extra_us``) at node1's forward stage.
    """
    flows = [{"name": "rr", "kind": "request-response", "src": "client", "dst": dst,
              "size_bytes": 200, "reply_bytes": 1000}]  # fmt: skip
    raw = dict(article_raw, flows=flows)
    scn = scenario_from_dict(raw, "article.toml")
    cl = build_cluster(scn, "article.toml")
    fwd = resolve(cl, "client", dst)
    rep = resolve_reply(cl, fwd)
    assert fwd.verdict == rep.verdict == "delivered"
    assert any(h.nat for h in fwd.hops) == any(h.nat for h in rep.hops) == (dst == "internet")
    rtt_us = no_wait_us(fwd, 200, scn.costs) + no_wait_us(rep, 1000, scn.costs)
    res = simulate(scn, seed=1, duration_s=0.01, warmup_s=0.001)
    rtts = np.asarray(res.flows[0].rtt_s) * 1e6
    assert rtts.size > 100
    # floating-point sums of ~17 terms in another order: equal to 1 ps
    assert np.max(np.abs(rtts - rtt_us)) < 1e-6
    tps = summarize(res)["flows"]["rr"]["transactions_per_s"]
    assert abs(tps * 0.009 - 0.009 / (rtt_us * 1e-6)) <= 1


@pytest.mark.parametrize(("src", "dst"), [("client", "web"), ("api", "web")])
def test_bulk_with_a_large_window_fills_the_bottleneck(article_raw, src, dst) -> None:
    """Bulk throughput -> the bottleneck's capacity, counting the acks it also serves.

    Per data packet a station does the data packet's service if it is on the data
    path plus the ack's if it is on the ack path (bridges and forward stages carry
    both directions). Capacity = 1 / max over stations of that work. Once the
    window fills the bottleneck never idles, and the data and acks it has served
    differ by at most the window W; data delivered in the window differ from data
    served there by at most W. So |delivered - T * capacity| <= 2 W + 2 packets.
    """
    w = 64
    flows = [{"name": "bulk", "kind": "bulk", "src": src, "dst": dst, "window_packets": w,
              "size_bytes": 1500, "ack_bytes": 64}]  # fmt: skip
    raw = dict(article_raw, flows=flows)
    raw["costs"] = {k: {"buffer_packets": "unlimited"} for k in ("veth", "bridge", "forward")}
    scn = scenario_from_dict(raw, "article.toml")
    cl = build_cluster(scn, "article.toml")
    fwd = resolve(cl, src, dst)
    rep = resolve_reply(cl, fwd)
    work: dict[str, float] = {}
    for path, size in ((fwd, 1500), (rep, 64)):
        for h in path.hops:
            c = getattr(scn.costs, h.kind)
            work[h.station] = work.get(h.station, 0.0) + c.mean_service_us(size) * 1e-6
    cap_pps = 1.0 / max(work.values())
    t0, t1 = 0.002, 0.022
    res = simulate(scn, seed=1, duration_s=t1, warmup_s=t0)
    f = summarize(res)["flows"]["bulk"]
    delivered_in_window = f["throughput_gbps"] * 1e9 * (t1 - t0) / (1500 * 8)
    assert abs(delivered_in_window - (t1 - t0) * cap_pps) <= 2 * w + 2, (
        delivered_in_window,
        (t1 - t0) * cap_pps,
    )
    assert f["dropped"] == 0
    util = summarize(res)["stations"]
    assert max(s["utilization"] for s in util.values()) > 0.999
