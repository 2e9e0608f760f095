"""Every shipped experiment runs in --quick mode; its summary matches a committed one.

The references in tests/reference/ are regenerated only on purpose::

    PODNETSIM_REGEN_REFERENCE=1 .venv/bin/python -m pytest tests/test_shipped_experiments.py

Runs are pure functions of (spec, seed), so on one platform the summaries are
identical; the comparison allows 1e-9 relative error for other CPUs/libm builds.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sim.batch import run_experiment

ROOT = Path(__file__).resolve().parent.parent
EXPERIMENTS = sorted((ROOT / "experiments").glob("*.toml"))
REFERENCE = Path(__file__).resolve().parent / "reference"
REGEN = os.environ.get("PODNETSIM_REGEN_REFERENCE") == "1"
PLOTS = ("latency-vs-load", "throughput-vs-load", "latency-cdf", "station-breakdown", "drops")


def test_all_issue_experiments_are_shipped():
    names = {p.stem for p in EXPERIMENTS}
    assert {
        "same-vs-cross-latency",
        "same-vs-cross-throughput",
        "packet-size",
        "nat-vs-no-nat",
        "pods-per-node",
    } <= names


@pytest.mark.parametrize("path", EXPERIMENTS, ids=lambda p: p.stem)
def test_quick_summary_matches_reference(path: Path, tmp_path: Path):
    out = tmp_path / path.stem
    rep = run_experiment(path, out, jobs=1, quick=True, plots=True)
    assert not rep.failures
    assert rep.ran == rep.total
    got = pd.read_csv(out / "summary.csv")
    for kind in PLOTS:
        if (out / "plots" / f"{kind}.png").exists():
            assert (out / "plots" / f"{kind}.svg").exists()
    assert list((out / "plots").glob("*.png")), "no plot drawn"
    ref_path = REFERENCE / f"{path.stem}.summary.csv"
    if REGEN:
        REFERENCE.mkdir(exist_ok=True)
        shutil.copy(out / "summary.csv", ref_path)
        return
    assert ref_path.exists(), f"no reference for {path.stem}; regenerate on purpose"
    ref = pd.read_csv(ref_path)
    assert list(got.columns) == list(ref.columns)
    assert len(got) == len(ref)
    for col in ref.columns:
        a, b = got[col], ref[col]
        if pd.api.types.is_numeric_dtype(b) and pd.api.types.is_numeric_dtype(a):
            np.testing.assert_allclose(
                a.to_numpy(float), b.to_numpy(float), rtol=1e-9, atol=1e-12, err_msg=col
            )
        else:
            assert a.astype(str).tolist() == b.astype(str).tolist(), col


def _reference(name: str) -> pd.DataFrame:
    return pd.read_csv(REFERENCE / f"{name}.summary.csv")


def test_cpu_noisy_neighbour_claims():
    """The README's reading of cpu-noisy-neighbour (on the reference, which the test
    above keeps equal to a fresh --quick run): a neighbour on the other core, or a
    real-time probe, leaves the probe's RTT at its idle value; on the probe's core at
    normal priority it slows the probe, more as it grows."""
    d = _reference("cpu-noisy-neighbour")
    d = d[d["flow"] == "probe"]
    rtt = d["rtt_mean_us.mean"]
    idle = float(d["rtt_p50_us.mean"].min())
    untouched = (d["datapath.pin.noisy"] == 1) | d["datapath.realtime.client"]
    assert np.allclose(rtt[untouched], idle) and np.allclose(d["rtt_p99_us.mean"][untouched], idle)
    hit = d[~untouched].sort_values("flows.neighbour.rate_pps")["rtt_mean_us.mean"].to_numpy()
    assert len(hit) == 2 and idle * 1.1 < hit[0] < hit[1] / 2


def test_cpu_saturation_eight_cores_claim():
    """Cross-node, 8 cores: RSS moves the receive path off the reader's core, so the
    flow delivers more than with 1 or 2 cores; same-node, 8 cores equal 2."""
    d = _reference("cpu-saturation")
    top = d[d["flows.probe.rate_pps"] == d["flows.probe.rate_pps"].max()]
    tput = top.set_index(["placement", "datapath.cpus"])["throughput_gbps.mean"]
    assert tput["cross-node", 8] > 1.1 * tput["cross-node", 2] == pytest.approx(
        1.1 * tput["cross-node", 1]
    )
    assert tput["same-node", 8] == tput["same-node", 2] > tput["same-node", 1]


def test_cpu_saturation_one_core_delivers_less_past_saturation():
    """The README's reading: with one core per node, same-node delivers less past
    saturation than at it (the sender's slice overflows the socket buffer), with the
    drops at the socket buffer."""
    d = _reference("cpu-saturation")
    one = d[(d["placement"] == "same-node") & (d["datapath.cpus"] == 1)]
    one = one.sort_values("flows.probe.rate_pps")
    tput = one["throughput_gbps.mean"].to_numpy()
    assert tput[-1] < 0.5 * tput.max() and tput.argmax() < len(tput) - 1
    assert one["drop_rate.mean"].iloc[-1] > 0.5
    assert one["drops.socket receive buffer full at web.mean"].iloc[-1] > 0
