"""A measured TCP set (``testbed tcp -o``) and ``podnetsim compare`` of it.

The fit and predictions themselves are tested in ``tests/validate/test_tcp_fit.py``
(slow) and against the kernel in ``tests/testbed/test_tcp.py``; here the file, its
errors and the wiring of ``compare`` (with the fit replaced by a stub).
"""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from sim.cli.main import cli
from sim.errors import UserError
from sim.validate.models import Measurements, TcpSet, read_record, write_tcp_set
from sim.validate.tcp import misses

PAIRS = {"same": ("client", "web"), "cross": ("api", "web")}
IDLE = {"same": 23.8, "cross": 38.2}
GBPS = {("same", 1): 5.0, ("cross", 1): 4.0, ("same", 4): 5.5, ("cross", 4): 3.9}


def test_a_set_reads_back_as_written(tmp_path) -> None:
    path = tmp_path / "tcp.json"
    write_tcp_set(path, "article.toml", PAIRS, IDLE, GBPS, 2.0)
    ts = read_record(path, Measurements, TcpSet)
    assert isinstance(ts, TcpSet)
    assert ts.measured_gbps() == GBPS and ts.idle_p50_us == IDLE and ts.seconds == 2.0
    assert {k: tuple(v) for k, v in ts.pairs.items()} == PAIRS


@pytest.mark.parametrize(
    ("edit", "words"),
    [
        (lambda d: d["goodput"].pop(0), "no same-node one-stream goodput"),
        (lambda d: d["goodput"][1].update(gbps=-1), "greater than 0"),
        (lambda d: d.update(schema_version=9), "schema_version"),
        (lambda d: d["idle_p50_us"].pop("cross"), "'cross'"),
    ],
)
def test_a_bad_set_is_one_line(tmp_path, edit, words) -> None:
    path = tmp_path / "tcp.json"
    write_tcp_set(path, "article.toml", PAIRS, IDLE, GBPS, 2.0)
    doc = json.loads(path.read_text())
    edit(doc)
    path.write_text(json.dumps(doc))
    with pytest.raises(UserError) as err:
        read_record(path, TcpSet)
    text = str(err.value)
    assert text.startswith(str(path)) and words in text and "Fix:" in text and "\n" not in text


def test_misses_use_the_issues_tolerances() -> None:
    rows = [
        {"case": "same 1 stream(s)", "ratio": 2.0, "held_out": False},  # fitted: never
        {"case": "cross 1 stream(s)", "ratio": 1.24, "held_out": True},
        {"case": "cross 4 stream(s)", "ratio": 0.74, "held_out": True},
        {"case": "ratio 1 stream(s)", "ratio": 1.16, "held_out": True},
    ]
    assert misses(rows) == ["cross 4 stream(s)", "ratio 1 stream(s)"]


def test_compare_takes_a_tcp_set(tmp_path, article_path, monkeypatch) -> None:
    """``compare SCENARIO SET --params P`` refits and predicts (here a stub) with the
    parameter file's costs and --set as overrides; --strict exits 1 on a miss."""
    import sim.validate.tcp as tcp_mod

    seen = {}

    def stub(scenario, overrides, pairs, idle, gbps):
        seen.update(overrides=overrides, pairs=pairs, idle=idle, gbps=gbps)
        fit = SimpleNamespace(element_us=1.0, send_us=2.0, per_byte_ns=0.1)
        rows = [{"case": "cross 1 stream(s)", "measured": 4.0, "predicted": 6.0, "ratio": 1.5,
                 "held_out": True}]  # fmt: skip
        return fit, rows

    monkeypatch.setattr(tcp_mod, "compare_tcp", stub)
    ts = tmp_path / "tcp.json"
    write_tcp_set(ts, str(article_path), PAIRS, IDLE, GBPS, 2.0)
    params = tmp_path / "p.toml"
    params.write_text("[costs]\nveth = { per_packet_us = 0.7 }\n[calibration]\nendpoint_us = 1.0\n")
    args = ["compare", str(article_path), str(ts), "--params", str(params)]
    r = CliRunner().invoke(cli, [*args, "--set", "costs.bridge.per_packet_us=0.9"])
    assert r.exit_code == 0, r.output
    assert seen["overrides"] == {"costs.veth.per_packet_us": 0.7, "costs.bridge.per_packet_us": 0.9}
    assert seen["gbps"] == GBPS and seen["pairs"] == PAIRS
    assert "cross 1 stream(s)" in r.output and "model/iperf3" in r.output
    assert CliRunner().invoke(cli, [*args, "--strict"]).exit_code == 1
    r = CliRunner().invoke(cli, [*args, "--json"])
    assert json.loads(r.output)["rows"][0]["ratio"] == 1.5


def test_testbed_tcp_checks_out_before_measuring(tmp_path, article_path) -> None:
    args = ["testbed", "tcp", str(article_path), "--same", "client", "web", "--cross", "api",
            "web", "-o", str(tmp_path / "no" / "tcp.json")]  # fmt: skip
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 2
    assert "--output: its folder does not exist" in r.output and "Fix: create it first" in r.output
