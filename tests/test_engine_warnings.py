"""Overload warnings add the load of every open-loop flow at a shared station."""

from sim.engine import simulate
from sim.spec.load import scenario_from_dict

BASE = {
    "nodes": [{"name": "node1"}, {"name": "node2"}],
    "pods": [
        {"name": "a", "node": "node1"},
        {"name": "b", "node": "node1"},
        {"name": "c", "node": "node1"},
    ],
    "costs": {"bridge": {"buffer_packets": "unlimited"}},
    "simulation": {"duration_s": 0.002, "warmup_s": 0.0005},
}


def _warnings(loads):
    raw = dict(BASE)
    raw["flows"] = [
        {"name": f"f{i}", "src": src, "dst": "a", "load": load}
        for i, (src, load) in enumerate(zip(("b", "c"), loads, strict=False))
    ]
    return simulate(scenario_from_dict(raw)).warnings


def test_two_flows_that_overload_a_shared_bridge_together_are_warned():
    warnings = _warnings((0.6, 0.6))
    assert any("station node1/cbr0" in w and "1.20" in w for w in warnings), warnings


def test_no_warning_below_capacity():
    assert not [w for w in _warnings((0.4, 0.4)) if "capacity" in w]


def test_single_flow_overload_is_warned_once_for_its_bottleneck():
    warnings = [w for w in _warnings((1.2,)) if "node1/cbr0" in w]
    assert len(warnings) == 1, warnings
