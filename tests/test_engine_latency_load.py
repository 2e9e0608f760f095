"""Latency against offered load on the article's cluster: same-node vs cross-node.

Same-node: client -> web (node1: veth, cbr0, veth; bottleneck cbr0).
Cross-node: api -> web (node2 -> gateway -> node1, 10 stations; bottleneck node2's
eth0 transmit). ``load`` is a fraction of each path's own bottleneck capacity for
1500 B packets, and both flows are named alike so they draw the same random
numbers (common random numbers).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from sim.analysis import summarize
from sim.engine import simulate
from sim.spec.costs import Costs
from sim.spec.load import scenario_from_dict

SAME, CROSS = "client", "api"
KINDS = ("veth", "bridge", "forward", "eth0_tx", "eth0_rx", "gateway", "gateway_link")
UNLIMITED = {f"costs.{k}.buffer_packets": "unlimited" for k in KINDS}


def run(raw: dict, src: str, load: float, duration_s: float, unlimited: bool = False):
    raw = dict(raw)
    raw["flows"] = [{"name": "f", "kind": "poisson", "src": src, "dst": "web", "load": load}]
    scn = scenario_from_dict(raw, "article.toml", UNLIMITED if unlimited else None)
    return simulate(scn, seed=7, duration_s=duration_s, warmup_s=duration_s / 10)


def flow(res) -> dict:
    return summarize(res)["flows"]["f"]


def capacity_pps(src: str) -> float:
    """Bottleneck capacity for 1500 B packets, from the default costs (not the engine)."""
    c = Costs()
    service_us = c.bridge.mean_service_us(1500) if src == SAME else c.eth0_tx.mean_service_us(1500)
    return 1e6 / service_us


def test_cross_node_is_slower_than_same_node_at_every_load(article_raw) -> None:
    loads = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
    same = [flow(run(article_raw, SAME, x, 0.02)) for x in loads]
    cross = [flow(run(article_raw, CROSS, x, 0.02)) for x in loads]
    for x, s, c in zip(loads, same, cross, strict=True):
        assert c["latency_us"]["mean"] > s["latency_us"]["mean"], x
        assert c["latency_us"]["p50"] > s["latency_us"]["p50"], x
        # 10 stations against 3: the median is more than doubled at every load
        assert c["latency_us"]["p50"] > 2 * s["latency_us"]["p50"], x
        assert s["offered_pps"] == pytest.approx(x * capacity_pps(SAME), rel=1e-12)
        assert c["offered_pps"] == pytest.approx(x * capacity_pps(CROSS), rel=1e-12)
        assert s["dropped"] == c["dropped"] == 0
    # mean latency increases with load on both paths
    for series in (same, cross):
        means = [f["latency_us"]["mean"] for f in series]
        assert all(b > a for a, b in zip(means, means[1:], strict=False)), means


def test_latency_grows_without_bound_as_load_approaches_one(article_raw) -> None:
    """Queueing delay (mean latency - the no-wait latency) at load 0.98 vs 0.5.

    For an M/D/1 bottleneck alone Pollaczek-Khinchine gives a ratio of mean waits
    (0.98 / 0.02) / (0.5 / 0.5) = 49. The bottleneck here sees Poisson traffic
    smoothed by the stations before it (less variable, so smaller waits at both
    loads) and a 0.1 s run at 0.98 spans only ~7 relaxation times
    (1 / (mu (1 - sqrt(rho))^2) ~ 14 ms), so its estimate is noisy (~+-30%). We
    assert a factor of 10, a fifth of the P-K value, which still means "many times".
    """
    for src in (SAME, CROSS):
        mid = run(article_raw, src, 0.5, 0.03, unlimited=True)
        high = run(article_raw, src, 0.98, 0.1, unlimited=True)
        assert not high.warnings  # 0.98 < 1: no warning
        delays = []
        for res in (mid, high):
            p = res.packets
            ok = (p["reason"] == 0) & (p["done_s"] <= res.duration_s)
            lat = p["done_s"][ok] - p["send_s"][ok]
            # the no-wait latency: packets that found every queue empty (many do,
            # even at 0.98); all packets are 1500 B so it is one number
            delays.append(flow(res)["latency_us"]["mean"] - lat.min() * 1e6)
        assert delays[1] > 10 * delays[0], (src, delays)


@pytest.mark.parametrize("src", [SAME, CROSS])
def test_overload_with_unlimited_buffers_latency_grows_with_run_length(
    article_raw, src: str
) -> None:
    """Load 1.2, unlimited buffers: mean latency follows the fluid limit.

    The bottleneck (rate mu) gets rho*mu packets/s and never empties, so a packet
    sent at t waits ~(rho - 1) t. Packets sent after T/rho are still queued at the
    end T, so the delivered packets of the window [w, T) are those sent in
    [w, T/rho], with mean latency (rho - 1) (w + T/rho) / 2 (plus the few-us path).
    Error bound: the backlog at t deviates from the fluid by the Poisson count's
    fluctuation, sd sqrt(lambda t) packets; an average over [w, T/rho] varies less
    than its end point, so the mean latency is within 3 sqrt(lambda T) / mu of the
    fluid value (3 sd), plus the no-wait path latency (< 15 us).
    """
    rho = 1.2
    mu = capacity_pps(src)
    lam = rho * mu
    means = []
    for t_end in (0.01, 0.02, 0.04):
        res = run(article_raw, src, rho, t_end, unlimited=True)
        assert any("unlimited buffer" in w and "1.20" in w for w in res.warnings)
        f = flow(res)
        assert f["dropped"] == 0
        w = res.warmup_s
        fluid_us = (rho - 1) * (w + t_end / rho) / 2 * 1e6
        bound_us = 3 * math.sqrt(lam * t_end) / mu * 1e6 + 15.0
        got = f["latency_us"]["mean"]
        assert abs(got - fluid_us) <= bound_us, (t_end, got, fluid_us, bound_us)
        # the packets sent after ~T/rho are the ones still in flight at the end
        assert f["in_flight"] == pytest.approx(
            lam * (t_end - t_end / rho), rel=0.05, abs=3 * math.sqrt(lam * t_end)
        )
        means.append(got)
    assert means[0] < means[1] < means[2]
    assert np.all(np.diff(means) > 500.0)  # roughly doubles with T (~930, ~1870 us)
