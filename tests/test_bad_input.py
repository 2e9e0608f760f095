"""Issue 9, input side: bad input is one line (exit 2), never a traceback or a
run without end. Each test here failed before its fix."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from sim.cli.main import cli
from sim.engine.budget import DEFAULT_MAX_PACKETS, check_work, estimate_work
from sim.errors import UserError
from sim.spec.load import load_scenario

SHORT = ("--duration", "0.01", "--warmup", "0.001")


def run(*args) -> object:
    return CliRunner().invoke(cli, [str(a) for a in args], prog_name="podnetsim")


def assert_bad_input(result, *needles: str) -> str:
    """Exit status 2, one ``error: ... Fix: ...`` line on stderr, no traceback."""
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit), result.exception
    err = result.stderr.strip()
    assert err.startswith("error: ") and "\n" not in err, err
    assert " Fix: " in err, err
    assert "Traceback" not in result.output
    for n in needles:
        assert n in err, (n, err)
    return err


def flows_set(*flows: str) -> tuple[str, str]:
    return ("--set", "flows=[" + ", ".join(flows) + "]")


# -- all numbers finite ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("simulation.duration_s", "inf"),
        ("simulation.duration_s", "nan"),
        ("costs.veth.per_packet_us", "inf"),  # was a ZeroDivisionError
        ("costs.bridge.per_byte_ns", "inf"),
        ("costs.gateway_link.propagation_us", "inf"),
        ("costs.nat_extra_us", "inf"),
        ("flows.0.load", "inf"),
        ("flows.0.start_s", "nan"),
    ],
)
def test_infinite_numbers_are_refused(article_path, field, value) -> None:
    r = run("check", article_path, "--set", f"{field}={value}")
    assert_bad_input(r, str(article_path), field, "finite")


@pytest.mark.parametrize("option", ["--duration", "--warmup"])
def test_infinite_run_length_on_the_command_line(article_path, option) -> None:
    assert_bad_input(run("simulate", article_path, option, "inf"), "finite")


def test_costs_whose_combination_overflows_are_refused(article_path) -> None:
    r = run("check", article_path, "--set", "costs.veth.per_byte_ns=1e305")
    assert_bad_input(r, "costs.veth", "infinite service time")


def test_servers_are_bounded(article_path) -> None:
    r = run("check", article_path, "--set", "costs.forward.servers=1e12")
    assert_bad_input(r, "costs.forward.servers")


# -- work estimated before it starts --------------------------------------------------


@pytest.mark.parametrize(
    ("flow", "duration", "needles"),
    [
        ('{name="f", src="client", dst="web", load=1e30}', "0.05", ["flows.0", "ceiling"]),
        ('{name="f", src="client", dst="web", load=0.5}', "1e9", ["flows.0", "ceiling"]),
        ('{name="f", src="client", dst="web", rate_pps=1e9}', "1", ["--max-packets 1000000000"]),
        ('{name="f", src="client", dst="web", rate_gbps=1e300}', "0.05", ["unbounded"]),
        ('{name="f", kind="bulk", src="client", dst="web", window_packets=1e12}', "0.05", []),
    ],
)
def test_unbounded_work_stops_before_the_run(article_path, flow, duration, needles) -> None:
    """These were accepted and never finished (or ran out of memory)."""
    r = run("simulate", article_path, *flows_set(flow), "--duration", duration)
    assert_bad_input(r, "packets", *needles)


def test_hop_records_have_their_own_ceiling(article_path, tmp_path) -> None:
    flow = '{name="f", src="client", dst="web", rate_pps=1e6}'
    hops = tmp_path / "h.csv"
    args = [*flows_set(flow), "--duration", "5", "--hops-out", hops]
    err = assert_bad_input(run("simulate", article_path, *args), "per-hop records")
    assert "--max-hop-records" in err
    assert not hops.exists()
    # the flag sets the ceiling: ~3000 packets x 3 stations pass 1000 but not 1e5
    args = [*flows_set(flow), *SHORT[:2], "--warmup", "0.001", "--hops-out", hops]
    low = run("simulate", article_path, *args, "--max-hop-records", "1000")
    assert_bad_input(low, "about 3e+04 per-hop records", "--max-hop-records 3")
    ok = run("simulate", article_path, *args, "--max-hop-records", "1e5", "--json")
    assert ok.exit_code == 0, ok.output
    assert hops.stat().st_size > 0


def test_closed_loop_with_zero_round_trip_never_starts(article_path) -> None:
    """A request/response loop over stations that take no time never advanced the clock."""
    zero = {
        kind: f"costs.{kind}={{per_packet_us=0, per_byte_ns=0, propagation_us=0}}"
        for kind in ("loopback",)
    }
    flow = '{name="rr", kind="request-response", src="web/nginx", dst="web/scrapyd"}'
    args = [*flows_set(flow), "--set", zero["loopback"], *SHORT]
    err = assert_bad_input(run("simulate", article_path, *args), "flows.0", "unbounded")
    assert "no simulated time" in err


def test_estimate_matches_a_constant_flow_exactly(article_path) -> None:
    """rate x window for an open-loop flow: a constant flow sends exactly that many."""
    from sim.engine import simulate

    flow = {"name": "c", "kind": "constant", "src": "client", "dst": "web", "rate_pps": 1e5}
    flow |= {"start_s": 0.002, "stop_s": 0.012}
    scn = load_scenario(article_path, {"flows": [flow]})
    est = estimate_work(scn, duration_s=0.02)
    assert est.packets == pytest.approx(1000)
    res = simulate(scn, duration_s=0.02)
    assert abs(len(res.packets["send_s"]) - est.packets) <= 1
    check_work(est)  # under the default ceiling
    with pytest.raises(UserError, match="--max-packets 1000"):
        check_work(est, max_packets=999, file="x.toml")
    assert DEFAULT_MAX_PACKETS == 10_000_000


# -- TOML: nesting, encoding, size -----------------------------------------------------


def test_toml_nested_1000_deep(tmp_path) -> None:
    """tomllib raised RecursionError: now one line naming the file."""
    p = tmp_path / "deep.toml"
    p.write_text("x = " + "[" * 1000 + "]" * 1000 + "\n", encoding="utf-8")
    assert_bad_input(run("check", p), str(p), "nested more than")
    p.write_text("x = " + "[" * 40 + "]" * 40 + "\n", encoding="utf-8")  # parses, too deep
    assert_bad_input(run("check", p), str(p), "x.0.0", "nested more than")


def test_set_value_nested_1000_deep(article_path) -> None:
    deep = "[" * 1000 + "]" * 1000
    assert_bad_input(run("check", article_path, "--set", f"name={deep}"), "--set")


def test_toml_with_byte_order_mark_and_bad_bytes(article_path, tmp_path) -> None:
    p = tmp_path / "bom.toml"
    p.write_bytes(b"\xef\xbb\xbf" + article_path.read_bytes())
    assert run("check", p).exit_code == 0
    p.write_bytes(article_path.read_bytes() + b"\n# \xff\xfe\n")
    assert_bad_input(run("check", p), str(p), "not UTF-8")


def test_long_list_index_in_set(article_path) -> None:
    assert_bad_input(run("check", article_path, "--set", "pods." + "9" * 5000 + ".name=x"))


# -- trace files --------------------------------------------------------------------------


HEADER = "time_s,size_bytes,src,dst\n"


def _trace_run(article_path: Path, csv: Path, *extra: str):
    flow = f'{{name="t", kind="trace", trace_file="{csv}"{"".join(extra)}}}'
    return run("simulate", article_path, *flows_set(flow), *SHORT, "--json")


@pytest.mark.parametrize(
    ("data", "needles"),
    [
        (HEADER.encode() + b"0.001,100,cli\xffent,web\n", ["t.csv:2", "not UTF-8"]),
        (HEADER.encode() + b"0.001,100," + b"a" * 200_000 + b",web\n", ["t.csv", "field limit"]),
        (HEADER.encode() + b"0.001,100,client,web\x00\n", ["unknown endpoint"]),
    ],
)
def test_undecodable_or_oversized_trace(article_path, tmp_path, data, needles) -> None:
    csv = tmp_path / "t.csv"
    csv.write_bytes(data)
    assert_bad_input(_trace_run(article_path, csv), "flows.0.trace_file", *needles)


def test_trace_with_byte_order_mark_is_read(article_path, tmp_path) -> None:
    csv = tmp_path / "t.csv"
    csv.write_bytes(b"\xef\xbb\xbf" + (HEADER + "0.002,100,client,web\n").encode())
    r = _trace_run(article_path, csv)
    assert r.exit_code == 0, r.output


def test_trace_flow_honours_its_window(article_path, tmp_path) -> None:
    """Rows outside [start_s, stop_s) are not sent (all rows were)."""
    import json

    csv = tmp_path / "t.csv"
    times = [0.0015, 0.003, 0.004, 0.006, 0.008, 0.0095]
    csv.write_text(HEADER + "".join(f"{t},100,client,web\n" for t in times), encoding="utf-8")
    r = _trace_run(article_path, csv, ", start_s=0.003", ", stop_s=0.008")
    assert r.exit_code == 0, r.output
    flow = json.loads(r.stdout)["flows"]["t"]
    assert flow["sent"] == 3  # 0.003, 0.004, 0.006


def test_route_ids_beyond_16_bits() -> None:
    """A trace naming more than 65,535 routes overflowed the 16-bit route column."""
    from sim.engine.recorder import Recorder

    rec = Recorder()
    rec.enable_hops()
    pkt = rec.new_packet(70_000, 100, 0.0)
    rec.hop_station.append(70_001)
    rec.hop_pkt.append(pkt)
    for col in (rec.hop_arrive_s, rec.hop_start_s, rec.hop_depart_s):
        col.append(0.0)
    rec.reason[pkt] = rec.reason_id("x" * 3) + 70_000
    out = rec.to_numpy()
    assert int(out["route"][0]) == 70_000 and int(out["reason"][0]) == 70_001
    assert int(rec.hops_to_numpy()["station"][0]) == 70_001


# -- output paths checked before the run -----------------------------------------------


@pytest.mark.parametrize(
    ("name", "needle"),
    [("missing/p.csv", "does not exist"), ("p.txt", "extension"), (".", "directory")],
)
def test_packets_out_checked_before_the_run(article_path, tmp_path, monkeypatch, name, needle):
    import sim.engine

    def no_run(*a, **k):
        raise AssertionError("the run started")

    monkeypatch.setattr(sim.engine, "simulate", no_run)
    target = tmp_path / name if name != "." else tmp_path
    r = run("simulate", article_path, "--packets-out", target, *SHORT)
    assert_bad_input(r, "--packets-out", needle)


# -- option errors: one line ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["--bogus"], ["podnetsim", "--bogus"]),
        (["check"], ["podnetsim check", "SCENARIO", "missing"]),
        (["check", "--zap", "x.toml"], ["podnetsim check", "--zap"]),
        (["check", "experiments"], ["podnetsim check", "SCENARIO", "directory"]),
        (["simulate", "x.toml", "--duration", "abc"], ["--duration", "abc"]),
        (["run", "x.toml", "--jobs", "0"], ["podnetsim run", "--jobs"]),
        (["nosuch"], ["nosuch", "simulate"]),
        (["testbed", "nosuch"], ["podnetsim testbed", "nosuch"]),
        (["trace", "x.toml", "web"], ["podnetsim trace", "DST"]),
    ],
)
def test_option_errors_are_one_line(args, needles) -> None:
    assert_bad_input(run(*args), *needles)


# -- bench from an installed package (no source tree) -----------------------------------


def test_bench_runs_without_the_source_tree(tmp_path) -> None:
    """``bench`` read experiments/ beside the package: absent from a wheel install."""
    import sim

    shutil.copytree(Path(sim.__file__).parent, tmp_path / "sim")
    code = "from sim.bench import run_bench; r = run_bench(0.002, 1); assert r['packets'] > 0"
    p = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert p.returncode == 0, p.stderr[-2000:]


# -- work per packet bounded: a byte-limited queue is not summed at each arrival -------


def test_byte_limited_station_does_not_rescan_its_queue(article_path, monkeypatch) -> None:
    """An overloaded byte-limited station summed its whole queue per arrival: a run
    quadratic in the queue length (45k packets took 31 s). Now a running count."""
    from collections import deque

    import sim.engine.stations as stations
    from sim.engine import simulate

    scans = []

    class CountingDeque(deque):
        def __iter__(self):
            scans.append(len(self))
            return super().__iter__()

    monkeypatch.setattr(stations, "deque", CountingDeque)
    flow = {"name": "hot", "src": "client", "dst": "web", "load": 1.5}
    over = {
        "flows": [flow],
        "costs.bridge.buffer_packets": "unlimited",
        "costs.bridge.buffer_bytes": 300 * 1500,
        "simulation.duration_s": 0.005,
        "simulation.warmup_s": 0.0,
    }
    res = simulate(load_scenario(article_path, over))
    bridge = next(s for s in res.stations if s.name == "node1/cbr0")
    assert bridge.drops > 0  # the byte limit still bites ...
    assert bridge.max_in_system == 300  # ... at exactly 300 packets of 1500 B
    assert len(scans) <= len(res.stations)  # only the end-of-run count walks a queue


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--repeats", "0"], "--repeats"),  # was a StatisticsError
        (["--duration", "0"], "--duration"),
        (["--duration", "1e6"], "packets"),  # was a run without end
    ],
)
def test_bench_options_are_bounded(args, needle) -> None:
    assert_bad_input(run("bench", *args), needle)


def test_huge_window_outside_the_run_does_not_loop(article_path) -> None:
    """outstanding = 1e12 with start_s past the end looped 1e12 times doing nothing."""
    flow = '{name="rr", kind="request-response", src="client", dst="web", start_s=5.0, '
    flow += "outstanding=1000000000000}"
    r = run("simulate", article_path, *flows_set(flow), *SHORT, "--json")
    assert r.exit_code == 0, r.output


@pytest.mark.parametrize(
    "field", ["node_network.cidr", "nodes.0.address", "masquerade.non_masquerade_cidrs"]
)
def test_boolean_is_not_an_address(article_path, field) -> None:
    """``true`` was read as the integer 1: address 0.0.0.1."""
    value = "[true]" if field.startswith("masquerade") else "true"
    assert_bad_input(run("check", article_path, "--set", f"{field}={value}"), field, "string")
