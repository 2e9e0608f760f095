"""The TCP fit recovers the copy cost that generated its input (no root needed)."""

from dataclasses import replace
from pathlib import Path

import pytest

from sim.control.cluster import build_cluster
from sim.spec.load import load_scenario
from sim.validate.tcp import _base_fit, fit_tcp, predict_tcp_gbps

ARTICLE = Path(__file__).resolve().parents[2] / "experiments" / "scenarios" / "article.toml"
PODS = [
    {"name": "web", "node": "node1"},
    {"name": "client", "node": "node1"},
    {"name": "api", "node": "node2"},
]
OV = {"pods": PODS, "flows": []}
SAME, CROSS = ("client", "web"), ("api", "web")
PIN = {"client": 0, "api": 0, "web": 1}
IDLE = {"same": 22.7, "cross": 31.9}


def test_fit_recovers_the_per_byte_cost_of_a_simulated_point():
    cl = build_cluster(load_scenario(ARTICLE, OV), str(ARTICLE))
    truth = replace(_base_fit(cl, SAME, CROSS, IDLE, 2), per_byte_ns=0.6)
    gbps = predict_tcp_gbps(ARTICLE, {**OV, **truth.overrides(cl)}, *SAME, 1, PIN)
    fit = fit_tcp(ARTICLE, OV, SAME, CROSS, IDLE, gbps, 2, PIN)
    # The fit reproduces the calibration point: its goodput is the target's.
    refit = predict_tcp_gbps(ARTICLE, {**OV, **fit.overrides(cl)}, *SAME, 1, PIN)
    assert refit == pytest.approx(gbps, rel=0.01)
    # 1/goodput is nearly linear in the per-byte cost, but not exactly: a receiver
    # sharing a core waits out the sender's scheduler slice, and goodput moves by
    # about 0.5 % between 0.60 and 0.68 ns/B (it is not monotone there), so the cost
    # itself is identified to about 15 %.
    assert fit.per_byte_ns == pytest.approx(0.6, rel=0.15)
    assert fit.element_us == pytest.approx(truth.element_us)


def test_more_elements_cost_more_per_super_segment():
    cl = build_cluster(load_scenario(ARTICLE, OV), str(ARTICLE))
    fit = replace(_base_fit(cl, SAME, CROSS, IDLE, 2), per_byte_ns=0.6)
    ov = {**OV, **fit.overrides(cl)}
    same = predict_tcp_gbps(ARTICLE, ov, *SAME, 1, PIN)
    cross = predict_tcp_gbps(ARTICLE, ov, *CROSS, 1, PIN)
    assert cross < same
