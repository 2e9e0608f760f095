"""The shipped calibrate-then-rerun example on the real-kernel replica (needs root).

``experiments/calibrate-and-rerun.sh`` (quick mode) measures the article's
replica, fits the per-hop costs and reruns the headline experiment with them and
with the default costs. Checked against theory we did not write: at 1 Gbit/s a
packet crosses a tandem of single deterministic servers fed by Poisson arrivals,
and in such a tandem the total wait equals the M/D/1 wait at the slowest station
alone, whatever the order (Avi-Itzhak, "A sequence of service stations with
arbitrary input and regular service times", Management Science 11(5), 1965). So
each run's mean one-way latency is the path's service times, propagation and NAT
plus that one wait, under its own costs; and the calibrated run's cross-node /
same-node ratio moves away from the default run's as that theory says, wherever
the move is larger than the runs can resolve.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from sim.batch.expand import placement_endpoints
from sim.control.cluster import build_cluster
from sim.control.resolve import resolve
from sim.spec.load import load_scenario
from sim.testbed import netns
from sim.validate.params import params_overrides

from .kernel import PID, requires_kernel, root_state

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "experiments" / "calibrate-and-rerun.sh"
ARTICLE = ROOT / "experiments" / "scenarios" / "article.toml"
PREFIX = f"pnk-{PID}-"
X = "flows.probe.rate_gbps"
LOW_GBPS = 1.0
IP_BYTES = 1500
SIGMAS = 5.0
#: Consecutive packets' waits are correlated (they share busy periods: 1 / (1 - rho)
#: = 1.5 packets on average at the busiest station's rho <= 0.33 here); counting n
#: packets as n / CORRELATED independent ones over-covers that.
CORRELATED = 10.0

pytestmark = requires_kernel


def tandem_theory_us(params: Path | None, placement: str, packets: float) -> tuple[float, float]:
    """Return the mean one-way latency at 1 Gbit/s by Avi-Itzhak, and its tolerance, us.

    The path's service times, propagation and NAT, plus the M/D/1 wait at its
    slowest station; the tolerance is :data:`SIGMAS` standard deviations of a mean
    wait over ``packets`` packets (Takacs' second moment of the M/G/1 wait).
    """
    scn = load_scenario(ARTICLE, params_overrides(params) if params else None)
    src, dst = placement_endpoints(scn, placement, {})
    total, slowest_us = 0.0, 0.0
    for hop in resolve(build_cluster(scn, str(ARTICLE)), src, dst).hops:
        c = getattr(scn.costs, hop.kind)
        assert c.servers == 1 and c.service == "deterministic", (hop.kind, c)
        service_us = c.mean_service_us(IP_BYTES)
        slowest_us = max(slowest_us, service_us)
        total += service_us + c.propagation_us
        total += scn.costs.nat_extra_us if hop.nat else 0.0
    lam_per_us = LOW_GBPS * 1e3 / (IP_BYTES * 8)
    rho = lam_per_us * slowest_us
    wait_us = rho * slowest_us / (2 * (1 - rho))
    wait2_us2 = 2 * wait_us**2 + lam_per_us * slowest_us**3 / (3 * (1 - rho))
    tol_us = SIGMAS * math.sqrt((wait2_us2 - wait_us**2) * CORRELATED / packets)
    return total + wait_us, tol_us


def simulated_us(results: Path) -> dict[str, tuple[float, float]]:
    """Return each placement's mean one-way latency (us) and delivered packets at 1 Gbit/s."""
    s = pd.read_csv(results / "summary.csv")
    s = s[s[X] == LOW_GBPS].set_index("placement")
    lat, packets = s["latency_mean_us.mean"], s["delivered.mean"] * s["n"]
    return {p: (float(lat[p]), float(packets[p])) for p in ("same-node", "cross-node")}


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    out = tmp_path_factory.mktemp("calibrated")
    netns.down(PREFIX)
    before = root_state()
    bindir = Path(sys.executable).parent
    env = {
        **os.environ,
        "QUICK": "1",
        "PREFIX": PREFIX,
        "PODNETSIM": str(bindir / "podnetsim"),
        "PYTHON": sys.executable,
    }
    try:
        proc = subprocess.run(
            ["bash", str(SCRIPT), str(out)],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
    finally:
        netns.down(PREFIX)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert root_state() == before, "the root namespace changed"
    return out, proc.stdout


def test_manifest_records_the_fitted_params_file(example):
    out, _ = example
    params = out / "PARAMS.toml"
    cal = json.loads((out / "calibrated" / "manifest.json").read_text())
    default = json.loads((out / "default" / "manifest.json").read_text())
    assert cal["params"]["sha256"] == hashlib.sha256(params.read_bytes()).hexdigest()
    assert Path(cal["params"]["file"]).name == "PARAMS.toml"
    assert default["params"] is None


def test_each_run_matches_the_tandem_theory_and_the_ratio_moves_as_it_says(example):
    out, stdout = example
    ratio, rel_tol = {}, {}
    for name, params in (("default", None), ("calibrated", out / "PARAMS.toml")):
        got = simulated_us(out / name)
        want = {p: tandem_theory_us(params, p, got[p][1]) for p in got}
        for p in got:
            assert abs(got[p][0] - want[p][0]) <= want[p][1], (name, p, got[p], want[p])
        ratio[name] = (
            got["cross-node"][0] / got["same-node"][0],
            want["cross-node"][0] / want["same-node"][0],
        )
        rel_tol[name] = sum(want[p][1] / want[p][0] for p in want)
    # The fitted costs move the theory's ratio; where the move is larger than both
    # runs can resolve, the simulated ratio moves the same way.
    shift = ratio["calibrated"][1] - ratio["default"][1]
    resolvable = sum(rel_tol[n] * ratio[n][1] for n in ratio)
    if abs(shift) > resolvable:
        assert (ratio["calibrated"][0] - ratio["default"][0]) * shift > 0, (ratio, rel_tol)
    assert "cross/same" in stdout
