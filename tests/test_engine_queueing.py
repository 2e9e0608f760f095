"""A single station against queueing theory: M/M/1, M/D/1 and M/M/1/K.

The station is the loopback ``web/lo`` of ``tests/data/engine/single_station.toml``:
a flow between two containers of one pod crosses nothing else. Service time
1 us (mu = 1e6 /s), no per-byte cost, no propagation, so a packet's one-way
latency *is* its sojourn time at the station.

How the tolerances are derived (not guessed)
--------------------------------------------
Per-packet quantities (sojourn, wait, blocked-or-not) are autocorrelated, so the
plain standard error is wrong. We use *batch means*: the packets sent in the
measurement window, in send order, are cut into K = 30 equal consecutive batches;
the K batch means are approximately independent and normal when a batch is much
longer than the queue's relaxation time (for M/M/1 about 1/(mu (1 - sqrt(rho))^2):
11 us at rho = 0.5, 90 us at rho = 0.8; each batch below spans >= 3 ms, i.e.
>= 30 relaxation times, and the warm-up of 5 ms removes the empty-start transient).
The 99% confidence interval is then mean +- t(0.995, K-1) * s / sqrt(K) with s the
standard deviation of the batch means.

We assert that the theoretical value lies inside that interval widened by
WIDEN = 1.5. Why widen: residual correlation rho1 between neighbouring batch means
inflates the variance of their mean by about (1 + 2 rho1); 1.5^2 = 2.25 covers
rho1 up to 0.6, far above the ~relaxation/batch-length < 0.05 expected here. A test
with a fixed seed is deterministic, so the widening only guards against a correct
engine landing in the 1% tail; it does not hide a bias larger than ~1.5 CI widths.
To make sure the interval is narrow enough to catch a real error, each test also
asserts that the (widened) half-width is below a stated fraction of the value.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from sim.analysis import summarize
from sim.engine import simulate
from sim.errors import ScenarioError
from sim.spec.costs import Costs, StationCost
from sim.spec.load import load_scenario

SINGLE = Path(__file__).resolve().parent / "data" / "engine" / "single_station.toml"
MU = 1e6  # service rate of web/lo: per_packet_us = 1
K_BATCHES = 30
LEVEL = 0.99
WIDEN = 1.5


def batch_ci(values: np.ndarray, k: int = K_BATCHES, level: float = LEVEL):
    """(mean, half-width) of a t-based CI for the mean of a sequence, from k batch means.

    The last ``len(values) % k`` values are left out so the batches are equal.
    """
    values = np.asarray(values, dtype=float)
    n = values.size // k * k
    assert n >= 10 * k, f"too few values ({values.size}) for {k} batches"
    means = values[:n].reshape(k, -1).mean(axis=1)
    half = stats.t.ppf(0.5 + level / 2, k - 1) * means.std(ddof=1) / math.sqrt(k)
    return float(means.mean()), float(half)


def assert_in_ci(values, theory: float, max_rel_half: float, what: str) -> None:
    """``theory`` inside the widened CI, and the CI narrow enough to mean something."""
    mean, half = batch_ci(values)
    half *= WIDEN
    assert abs(mean - theory) <= half, (
        f"{what}: theory {theory:.6g} outside {mean:.6g} +- {half:.3g} (99% CI x {WIDEN})"
    )
    assert half <= max_rel_half * abs(theory), (
        f"{what}: CI half-width {half:.3g} is over {max_rel_half:.0%} of {theory:.6g}; run longer"
    )


def run_single(service: str, rho: float, duration_s: float, seed: int, buffer="unlimited"):
    scn = load_scenario(
        SINGLE,
        {
            "costs.loopback.service": service,
            "costs.loopback.buffer_packets": buffer,
            "flows.probe.rate_pps": rho * MU,
        },
    )
    return simulate(scn, seed=seed, duration_s=duration_s, warmup_s=0.005)


def window_packets(res):
    """Masks over packets sent in the measurement window [warm-up, duration)."""
    p = res.packets
    sent = (p["send_s"] >= res.warmup_s) & (p["send_s"] < res.duration_s)
    delivered = sent & (p["done_s"] <= res.duration_s) & (p["reason"] == 0)
    return p, sent, delivered


# -- the TOML spelling of an unlimited buffer -------------------------------------------


def test_unlimited_buffer_spelling() -> None:
    """TOML has no null: ``buffer_packets = "unlimited"`` (file or --set) means None."""
    scn = load_scenario(SINGLE)
    assert scn.costs.loopback.buffer_packets is None
    assert StationCost(buffer_packets="unlimited").buffer_packets is None
    assert StationCost(buffer_bytes="Unlimited").buffer_bytes is None
    assert StationCost().buffer_packets == 1000  # the default stays finite
    with pytest.raises(ScenarioError, match=r"costs\.loopback\.buffer_packets"):
        load_scenario(SINGLE, {"costs.loopback.buffer_packets": "lots"})
    with pytest.raises(ScenarioError, match=r"costs\.loopback\.buffer_packets"):
        load_scenario(SINGLE, {"costs.loopback.buffer_packets": 0})


def test_partial_cost_table_keeps_the_kinds_defaults() -> None:
    """``[costs.bridge]`` with one field changes that field only (not the rest to 0)."""
    c = Costs.model_validate({"bridge": {"buffer_packets": "unlimited"}})
    assert c.bridge == Costs().bridge.model_copy(update={"buffer_packets": None})
    c = Costs.model_validate({"eth0_tx": {"rate_gbps": 25.0}})
    assert c.eth0_tx.framing_bytes == 38 and c.eth0_tx.propagation_us == 0.5
    assert c.eth0_tx.per_packet_us == Costs().eth0_tx.per_packet_us


def test_unlimited_buffer_never_drops_and_finite_one_does() -> None:
    """At rho = 1.5 an unlimited buffer grows (no drop); buffer 50 drops and caps it."""
    res = run_single("deterministic", 1.5, 0.01, seed=5)
    st = res.stations[0]
    assert st.drops == 0 and res.packets["reason"].max() == 0
    # the queue grows at lambda - mu = 0.5 packets/us: ~5000 in the system at 10 ms
    # (Poisson count sd ~ sqrt(15000) ~ 120)
    assert 4500 < st.in_system_at_end < 5500
    assert st.max_in_system >= st.in_system_at_end
    res = run_single("deterministic", 1.5, 0.01, seed=5, buffer=50)
    st = res.stations[0]
    assert st.drops > 0 and st.max_in_system == 50


# -- M/M/1 and M/D/1 ---------------------------------------------------------------------


@pytest.mark.parametrize(("rho", "duration_s", "max_rel"), [(0.5, 0.3, 0.04), (0.8, 0.6, 0.07)])
def test_mm1_mean_sojourn(rho: float, duration_s: float, max_rel: float) -> None:
    """M/M/1: mean sojourn 1/(mu - lambda); utilization rho; L = rho/(1-rho)."""
    res = run_single("exponential", rho, duration_s, seed=11)
    p, _, delivered = window_packets(res)
    sojourn = p["done_s"][delivered] - p["send_s"][delivered]
    w = 1.0 / (MU - rho * MU)
    assert_in_ci(sojourn, w, max_rel, f"M/M/1 rho={rho} mean sojourn")
    sm = summarize(res)["stations"]["web/lo"]
    # utilization and the time-average number in system are sums over the same
    # packets; their relative error follows the sojourn's, so use the same CI width
    mean, half = batch_ci(sojourn)
    rel = WIDEN * half / mean
    assert sm["utilization"] == pytest.approx(rho, rel=rel + 0.01)
    assert sm["mean_in_system"] == pytest.approx(rho / (1 - rho), rel=2 * rel + 0.01)


@pytest.mark.parametrize(("rho", "duration_s"), [(0.5, 0.2), (0.8, 0.4)])
def test_md1_mean_wait_pollaczek_khinchine(rho: float, duration_s: float) -> None:
    """M/D/1: mean wait rho / (2 mu (1 - rho)) (Pollaczek-Khinchine)."""
    res = run_single("deterministic", rho, duration_s, seed=12)
    p, _, delivered = window_packets(res)
    wait = p["done_s"][delivered] - p["send_s"][delivered] - 1.0 / MU
    assert wait.min() > -1e-15  # service is exactly 1 us: nobody is faster
    wq = rho / (2 * MU * (1 - rho))
    assert_in_ci(wait, wq, 0.05, f"M/D/1 rho={rho} mean wait")
    sm = summarize(res)["stations"]["web/lo"]
    assert sm["mean_wait_us"] == pytest.approx(wait.mean() * 1e6, rel=0.01)


# -- M/M/1/K -----------------------------------------------------------------------------


@pytest.mark.parametrize("rho", [0.9, 1.2])
def test_mm1k_blocking_probability(rho: float) -> None:
    """M/M/1/K, K = buffer_packets = 5 (waiting + in service).

    By PASTA the fraction of arrivals blocked is the stationary P_K =
    (1 - rho) rho^K / (1 - rho^(K+1)).
    """
    k = 5
    res = run_single("exponential", rho, 0.25, seed=13, buffer=k)
    p, sent, _ = window_packets(res)
    blocked = (p["reason"][sent] > 0).astype(float)
    pk = (1 - rho) * rho**k / (1 - rho ** (k + 1))
    assert_in_ci(blocked, pk, 0.05, f"M/M/1/{k} rho={rho} blocking")
    assert res.stations[0].max_in_system == k
    assert set(res.reasons[1:]) == {"buffer full at web/lo"}


def test_simulate_rejects_a_warmup_not_shorter_than_the_run() -> None:
    """Overrides passed to simulate() are checked like the file (no silent empty run)."""
    scn = load_scenario(SINGLE)  # warm-up 5 ms
    with pytest.raises(ScenarioError, match=r"simulation\.warmup_s.*warm-up 0\.005 s"):
        simulate(scn, duration_s=0.004)
    with pytest.raises(ScenarioError, match="warm-up"):
        simulate(scn, duration_s=0.01, warmup_s=-1.0)
    with pytest.raises(ScenarioError, match="duration"):
        simulate(scn, duration_s=0.0, warmup_s=0.0)
