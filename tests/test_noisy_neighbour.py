"""experiments/noisy-neighbour.toml in --quick mode answers its question (issue 10).

The probe's replies of a cross-node probe queue at node1's eth0:tx behind the
neighbour (an M/D/1-like queue at 7.5 of 8.39 Gbit/s: mean wait about
rho / (2 mu (1 - rho)) = 6 us); a same-node probe shares only node1's cbr0 (at most
half loaded), so the neighbour barely moves it.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from sim.batch import run_experiment

EXPERIMENT = Path(__file__).resolve().parents[1] / "experiments" / "noisy-neighbour.toml"
RATE = "flows.neighbour.rate_gbps"


@pytest.fixture(scope="module")
def summary(tmp_path_factory) -> pd.DataFrame:
    out = tmp_path_factory.mktemp("nn") / "res"
    rep = run_experiment(EXPERIMENT, out, quick=True, plots=False)
    assert not rep.failures and rep.ran == rep.total
    return pd.read_csv(out / "summary.csv")


@pytest.mark.slow
def test_roles_per_configuration(summary) -> None:
    assert set(summary["flow"]) == {"probe", "neighbour"}
    roles = summary.groupby("flow")["role"].unique()
    assert list(roles["probe"]) == ["measured"] and list(roles["neighbour"]) == ["background"]
    assert len(summary) == 2 * summary["config"].nunique()


@pytest.mark.slow
def test_neighbour_delivers_what_it_offers(summary) -> None:
    nb = summary[summary["flow"] == "neighbour"]
    # Poisson: ~250 packets per ms-window at 1 Gbit/s; 15% covers the count's noise
    assert nb["throughput_gbps.mean"].to_numpy() == pytest.approx(nb[RATE].to_numpy(), rel=0.15)


@pytest.mark.slow
def test_the_neighbour_slows_a_cross_node_probe_more(summary) -> None:
    probe = summary[summary["flow"] == "probe"].set_index(["placement", RATE])
    rtt = probe["rtt_mean_us.mean"]
    same = rtt["same-node", 7.5] - rtt["same-node", 1.0]
    cross = rtt["cross-node", 7.5] - rtt["cross-node", 1.0]
    assert cross > 2.0  # us: the replies wait at node1's eth0:tx
    assert cross > 3 * max(same, 0.0)
    assert rtt["cross-node", 1.0] > rtt["same-node", 1.0]  # more stations
