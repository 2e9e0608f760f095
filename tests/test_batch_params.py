"""Calibrated runs (issue 10): ``run``/``simulate --params PARAMS.toml`` apply the costs
``podnetsim calibrate`` wrote; the manifest records the file's sha256; a bad file is
one line and exit 2."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from sim.cli.main import cli

SMALL = Path(__file__).resolve().parent / "data" / "batch" / "small.toml"
ARTICLE = Path(__file__).resolve().parents[1] / "experiments" / "scenarios" / "article.toml"
#: as `podnetsim calibrate` writes it (sim/validate/params.py): [costs] and [calibration]
PARAMS = """
[costs]
nat_extra_us = 0.4

[costs.veth]
per_packet_us = 5.0

[calibration]
endpoint_us = 3.0
"""


def invoke(*args: str):
    return CliRunner().invoke(cli, [str(a) for a in args])


def one_error_line(stderr: str) -> str:
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    return lines[0]


@pytest.fixture
def params(tmp_path) -> Path:
    p = tmp_path / "params.toml"
    p.write_text(PARAMS)
    return p


def min_latency_us(out: Path) -> pd.Series:
    q = pd.read_parquet(out / "latency_quantiles.parquet")
    same = q[q["placement"] == "same-node"]
    return same.groupby("flows.probe.rate_gbps")["cdf.q000.0"].min()


def test_run_with_params_applies_the_costs_and_records_the_hash(tmp_path, params) -> None:
    """The same-node path crosses two veths: at 1 Gbit/s (veths 42% busy) the fastest
    packet (it met empty queues) takes exactly 2 x (5.0 - 0.5) us longer with the
    fitted veth cost (at 4 Gbit/s the 5 us veth is overloaded)."""
    base, cal = tmp_path / "base", tmp_path / "cal"
    assert invoke("run", SMALL, "--quick", "--no-plots", "--out", base).exit_code == 0
    res = invoke("run", SMALL, "--quick", "--no-plots", "--out", cal, "--params", params)
    assert res.exit_code == 0, res.output
    diff = min_latency_us(cal) - min_latency_us(base)
    assert diff[1.0] == pytest.approx(9.0, abs=1e-6)
    assert diff[4.0] > 100.0
    m = json.loads((cal / "manifest.json").read_text())
    assert m["params"] == {
        "file": str(params),
        "sha256": hashlib.sha256(params.read_bytes()).hexdigest(),
    }
    assert json.loads((base / "manifest.json").read_text())["params"] is None


def test_run_set_overrides_params(tmp_path, params) -> None:
    out = tmp_path / "o"
    res = invoke(
        "run",
        SMALL,
        "--quick",
        "--no-plots",
        "--out",
        out,
        "--params",
        params,
        "--set",
        "costs.veth.per_packet_us=0.5",
    )
    assert res.exit_code == 0, res.output
    base = tmp_path / "base"
    assert invoke("run", SMALL, "--quick", "--no-plots", "--out", base).exit_code == 0
    pd.testing.assert_series_equal(min_latency_us(out), min_latency_us(base))


@pytest.mark.parametrize(
    "text, words",
    [
        (None, ["params.toml"]),
        ("[calibration]\nendpoint_us = 1.0\n", ["no [costs] table"]),
        ("[costs]\nveth = 3\n", ["endpoint_us"]),
        (
            "[costs.veth]\nper_packet_us = -1\n[calibration]\nendpoint_us = 1.0\n",
            ["costs.veth.per_packet_us", "params.toml"],
        ),
        ("not toml [", ["params.toml"]),
    ],
)
@pytest.mark.parametrize("verb", ["run", "simulate"])
def test_bad_params_file_is_one_line(tmp_path, verb: str, text, words) -> None:
    p = tmp_path / "params.toml"
    if text is not None:
        p.write_text(text)
    target = [SMALL, "--dry-run"] if verb == "run" else [ARTICLE, "--duration", "0.002"]
    res = invoke(verb, *target, "--params", p)
    assert res.exit_code == 2, res.output
    line = one_error_line(res.stderr)
    for w in words:
        assert w in line, line


def test_simulate_with_params(params) -> None:
    args = ["simulate", ARTICLE, "--duration", "0.003", "--warmup", "0.001", "--json"]
    base = json.loads(invoke(*args).stdout)
    cal = json.loads(invoke(*args, "--params", params).stdout)
    lat = "latency_us"
    assert cal["flows"]["same-node"][lat]["p50"] > base["flows"]["same-node"][lat]["p50"] + 8.0
