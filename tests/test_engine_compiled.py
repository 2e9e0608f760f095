"""The compiled engine gives the SimPy engine's answers exactly, packet by packet.

Each scenario below exercises one feature (and asserts that it does: drops
happen, ties happen, NAT costs count), then runs on both engines and compares
every per-packet column (send, delivery or drop time, reason, route, size),
per-hop rows, station counters, in-flight count and warnings for equality.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("numba", reason="numba is not installed: pip install -e '.[fast]'")


from click.testing import CliRunner  # noqa: E402

from sim.cli.main import cli  # noqa: E402
from sim.engine import simulate  # noqa: E402
from sim.engine.compiled.select import blocking_flow, choose  # noqa: E402
from sim.errors import UserError  # noqa: E402
from sim.spec.load import load_scenario  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
ARTICLE = ROOT / "experiments" / "scenarios" / "article.toml"
SHORT = {"simulation.duration_s": 0.004, "simulation.warmup_s": 0.0005}


def poisson(name, src, dst, **kw):
    return {"name": name, "kind": "poisson", "src": src, "dst": dst, **kw}


def scenario(flows, **overrides):
    return load_scenario(ARTICLE, {"flows": flows, **SHORT, **overrides})


def assert_identical(a, b):
    """Every result of run ``a`` (SimPy) equals that of ``b`` (compiled)."""
    assert (a.engine, b.engine) == ("simpy", "compiled")
    assert a.packets.keys() == b.packets.keys()
    for k, col in a.packets.items():
        assert col.dtype == b.packets[k].dtype, k
        assert np.array_equal(col, b.packets[k], equal_nan=True), k
    assert (a.hops is None) == (b.hops is None)
    for k, col in (a.hops or {}).items():
        assert col.dtype == b.hops[k].dtype, k
        assert np.array_equal(col, b.hops[k]), k
    assert a.stations == b.stations
    assert a.reasons == b.reasons
    assert (a.route_flow, a.route_is_reply) == (b.route_flow, b.route_is_reply)
    assert (a.route_names, a.route_stations) == (b.route_names, b.route_stations)
    assert a.in_flight_at_end == b.in_flight_at_end
    assert a.warnings == b.warnings
    assert a.bytes_per_packet == b.bytes_per_packet
    assert [s.rate_pps for s in a.flows] == [s.rate_pps for s in b.flows]
    # each flow's own counters per hop of each route (packets, sojourn sums)
    assert [len(h) for h in a.hop_packets] == [len(r) for r in a.route_stations]
    for mine, theirs in ((a.hop_packets, b.hop_packets), (a.hop_sojourn_s, b.hop_sojourn_s)):
        assert len(mine) == len(theirs)
        for x, y in zip(mine, theirs, strict=True):
            assert x.dtype == y.dtype and np.array_equal(x, y)


def both(scn, **kw):
    a = simulate(scn, engine="simpy", **kw)
    b = simulate(scn, engine="compiled", **kw)
    assert_identical(a, b)
    return a


def drops_at(res, station: str) -> int:
    rid = res.reasons.index(f"buffer full at {station}")
    return int((res.packets["reason"] == rid).sum())


def test_finite_packet_buffer_drops():
    scn = scenario([poisson("p", "api", "web", load=1.3)], **{"costs.eth0_tx.buffer_packets": 4})
    res = both(scn)
    assert drops_at(res, "node2/eth0:tx") > 50


def test_byte_limit_with_mixed_sizes():
    scn = scenario(
        [poisson("p", "client", "web", load=0.97, size_bytes="imix")],
        **{"costs.bridge.buffer_bytes": 3000, "costs.bridge.per_packet_us": 2.0},
    )
    res = both(scn)
    assert drops_at(res, "node1/cbr0") > 20
    st = next(s for s in res.stations if s.name == "node1/cbr0")
    assert st.max_in_system > 2  # small packets share the bytes: more than 2 fit


@pytest.mark.parametrize("servers", [2, 4])
def test_several_servers_exponential_service(servers):
    scn = scenario(
        [poisson("p", "api", "web", rate_pps=0.9 * servers / 4e-6)],
        **{
            "costs.forward.servers": servers,
            "costs.forward.per_packet_us": 4.0,
            "costs.forward.per_byte_ns": 0.0,
            "costs.forward.service": "exponential",
            "costs.forward.buffer_packets": 3 * servers,
        },
    )
    res = both(scn)
    st = next(s for s in res.stations if s.name == "node2/forward")
    assert st.servers == servers and st.max_in_system == 3 * servers
    assert drops_at(res, "node2/forward") > 0


def test_merging_constant_flows_with_simultaneous_arrivals():
    # equal rates and phases: every packet of a and b is sent at the same instant
    # and they meet at node1/cbr0 in the same instant; the order decides who waits
    flows = [
        {"name": "a", "kind": "constant", "src": "client", "dst": "web", "rate_pps": 4e5},
        {"name": "b", "kind": "constant", "src": "web", "dst": "client", "rate_pps": 4e5},
        poisson("c", "api", "client", load=0.3, size_bytes=[64, 1500]),
    ]
    scn = scenario(flows, **{"costs.veth.per_packet_us": 0.0, "costs.veth.per_byte_ns": 0.0})
    res = both(scn, record_hops=True)
    p, route_flow = res.packets, np.asarray(res.route_flow)
    send_a = p["send_s"][route_flow[p["route"]] == 0]
    send_b = p["send_s"][route_flow[p["route"]] == 1]
    assert np.array_equal(send_a, send_b)  # simultaneous sends
    h = res.hops
    cbr0 = res.route_stations[0].index("node1/cbr0")
    at_cbr0 = h["station"] == h["station"][h["packet"] == 0][cbr0]
    arrive = h["arrive_s"][at_cbr0]
    assert np.unique(arrive).size < arrive.size  # ties at the merge point
    assert (h["start_s"][at_cbr0] > arrive).any()  # and one of each pair waits


def kernels_agree(scn, **kw):
    """The station-by-station loop and the event loop agree, and the former ran."""
    import sim.engine.compiled.tandem as tandem

    res = both(scn, **kw)  # simpy vs compiled (the tandem loop where eligible)
    calls = []
    orig = tandem.eligible
    tandem.eligible = lambda *a: calls.append(orig(*a)) or False
    try:
        event_loop = simulate(scn, engine="compiled", **kw)
    finally:
        tandem.eligible = orig
    assert calls == [True]
    res.engine = "simpy"
    assert_identical(res, event_loop)
    return res


def test_tandem_loop_exponential_service_drops_and_end_cut():
    scn = scenario(
        [poisson("p", "api", "web", load=1.3, size_bytes="imix")],
        **{
            "costs.eth0_tx.buffer_packets": 5,
            "costs.forward.service": "exponential",
            "costs.forward.buffer_bytes": 4000,
        },
    )
    res = kernels_agree(scn)
    assert drops_at(res, "node2/forward") > 500 and drops_at(res, "node1/forward") > 50
    assert res.in_flight_at_end > 0  # packets cut off between hops at the end


def test_tandem_loop_dropped_routes():
    for dst in ("10.0.1.78", "internet"):
        res = kernels_agree(scenario([poisson("p", "client", dst, rate_gbps=2.0)]))
        assert res.packets["send_s"].size > 100


def test_nat_costs_count_and_match():
    flows = [poisson("p", "client", "internet", rate_gbps=3.0)]
    res = both(scenario(flows, **{"costs.nat_extra_us": 1.5}), record_hops=True)
    free = simulate(scenario(flows, **{"costs.nat_extra_us": 0.0}))
    lat = np.nanmean(res.packets["done_s"] - res.packets["send_s"])
    lat0 = np.nanmean(free.packets["done_s"] - free.packets["send_s"])
    assert lat - lat0 > 1.4e-6


def test_onoff_trace_and_dropped_paths(tmp_path):
    trace = tmp_path / "t.csv"
    rows = ["time_s,size_bytes,src,dst"]
    rows += [f"{i * 2e-6:.9f},{200 + (i % 7) * 100},client,web" for i in range(800)]
    rows += [f"{0.0016 + i * 1e-6:.9f},1500,api,10.0.1.77" for i in range(300)]
    body = sorted(rows[1:], key=lambda r: float(r.split(",")[0]))
    trace.write_text("\n".join([rows[0], *body]) + "\n")
    flows = [
        {"name": "tr", "kind": "trace", "trace_file": str(trace)},
        {"name": "burst", "kind": "onoff", "src": "web", "dst": "api", "rate_pps": 5e5,
         "on_mean_us": 40.0, "off_mean_us": 60.0, "period_distribution": "pareto"},
        {"name": "bursty", "kind": "onoff", "src": "api", "dst": "client", "rate_pps": 3e5},
        poisson("nowhere", "client", "10.0.1.78", rate_pps=1e5, start_s=0.001, stop_s=0.003),
    ]  # fmt: skip
    res = both(scenario(flows))
    assert any(r.startswith("no neighbour") for r in res.reasons)
    assert (res.packets["reason"] > 0).sum() > 300


EXPERIMENTS = sorted((ROOT / "experiments").glob("*.toml"))


@pytest.mark.parametrize("path", EXPERIMENTS, ids=lambda p: p.stem)
def test_shipped_experiment_quick_runs_identical(path: Path, tmp_path: Path, monkeypatch):
    import sim.batch.runner as runner
    from sim.batch import load_experiment, run_experiment
    from sim.spec.load import scenario_from_dict

    batch = load_experiment(path, quick=True)
    spec = batch.runs[0]
    scn = scenario_from_dict(spec.scenario_raw, spec.file, spec.overrides, Path(spec.base_dir))
    blocked = blocking_flow(scn)
    if blocked is not None:  # closed loop or CPU path: auto falls back, compiled refuses
        assert choose(scn, "auto")[0] == "simpy"
        with pytest.raises(UserError) as err:
            choose(scn, "compiled")
        assert err.value.field == blocked[0]
        return
    run_experiment(path, tmp_path / "simpy", quick=True, plots=False)
    checked = []

    def both_engines(scn, engine, **kw):
        assert engine == "compiled"  # auto's choice, carried on the run spec
        a = simulate(scn, engine="simpy", **kw)
        b = simulate(scn, engine="compiled", **kw)
        assert_identical(a, b)
        checked.append(b)
        return b

    monkeypatch.setattr(runner, "simulate", both_engines)
    run_experiment(path, tmp_path / "compiled", quick=True, plots=False)
    assert len(checked) == len(batch.runs)
    runs = [(tmp_path / e / "runs.csv").read_bytes() for e in ("simpy", "compiled")]
    assert runs[0] == runs[1]


def test_choose_engine():
    closed = scenario([{"name": "rr", "kind": "request-response", "src": "client", "dst": "web"}])
    assert choose(closed, "auto") == ("simpy", blocking_flow(closed)[1])
    with pytest.raises(UserError) as err:
        choose(closed, "compiled", "s.toml")
    assert str(err.value).startswith("s.toml: flows.0.kind: the compiled engine cannot run")
    assert "'rr' is request-response" in str(err.value)
    open_loop = scenario([poisson("p", "client", "web", load=0.5)])
    assert choose(open_loop, "auto")[0] == "compiled"
    assert simulate(open_loop, engine="auto").engine == "compiled"
    assert simulate(closed, engine="auto").engine == "simpy"


def test_cpu_data_path_runs_compiled():
    # the identity tests are in tests/test_engine_compiled_cpu.py
    cpu = scenario([poisson("p", "client", "web", load=0.5)], **{"datapath.model": "cpu"})
    assert blocking_flow(cpu) is None
    assert choose(cpu, "auto")[0] == "compiled"
    assert simulate(cpu, engine="auto", duration_s=0.002, warmup_s=0.0).engine == "compiled"
    # real-time pods ([datapath] realtime = {pod = true}): the SimPy engine only
    for on in (False, True):
        dp = cpu.datapath.model_copy(update={"realtime": {"client": False, "web": on}})
        rt = cpu.model_copy(update={"datapath": dp})
        assert choose(rt, "auto")[0] == ("simpy" if on else "compiled")
    assert choose(rt, "auto") == ("simpy", blocking_flow(rt)[1])
    with pytest.raises(UserError) as err:
        choose(rt, "compiled", "s.toml")
    msg = "s.toml: datapath.realtime.web: the compiled engine cannot run this scenario: real-time"
    assert str(err.value).startswith(msg)


def run_cli(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def test_cli_engine_choice_and_identical_json():
    short = ("--duration", "0.003", "--warmup", "0.0005", "--json")
    a = run_cli("simulate", ARTICLE, *short, "--engine", "simpy")
    b = run_cli("simulate", ARTICLE, *short)  # auto
    assert a.exit_code == 0 and b.exit_code == 0, a.output + b.output
    assert a.stderr.startswith("engine: simpy") and b.stderr.startswith("engine: compiled")
    assert a.stdout == b.stdout


def test_cli_compiled_refuses_closed_loop_flow():
    flow = '{name = "bulk1", kind = "bulk", src = "client", dst = "web"}'
    r = run_cli("simulate", ARTICLE, "--set", f"flows=[{flow}]", "--engine", "compiled")
    assert r.exit_code == 2
    err = r.stderr.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in r.output
    assert "flows.0.kind" in err and "'bulk1' is bulk" in err


def test_cli_compiled_without_numba(monkeypatch):
    import sim.engine.compiled.select as select

    monkeypatch.setattr(select, "numba_available", lambda: False)
    r = run_cli("simulate", ARTICLE, "--engine", "compiled")
    assert r.exit_code == 2
    assert r.stderr.strip() == (
        "error: the compiled engine needs numba, which is not installed. "
        "Fix: pip install 'podnetsim[fast]' (or use --engine simpy)."
    )
    r = run_cli("simulate", ARTICLE, "--duration", "0.002", "--warmup", "0.0005")
    assert r.exit_code == 0 and r.stderr.startswith("engine: simpy (numba is not installed")


def test_bench_reports_both_engines():
    import json

    r = run_cli("bench", "--json", "--duration", "0.02", "--repeats", "1")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    keys = ("compiled_packet_hops_per_s", "compiled_ratio", "compile_s")
    for key in (*keys, "peak_bytes_per_packet", "compiled_peak_bytes_per_packet"):
        assert isinstance(doc[key], float) and doc[key] > 0, key
    # the peak counts the run's and the summary's copies, not only the packet columns
    assert doc["peak_bytes_per_packet"] > doc["bytes_per_packet"] == 29.0
    assert isinstance(doc["compile_from_cache"], bool)
    ratio = doc["compiled_packet_hops_per_s"] / doc["packet_hops_per_s"]
    assert doc["compiled_ratio"] == pytest.approx(ratio)  # one repeat: median of one
    # the CPU data path's case on both engines (they agree on its work, or bench fails)
    ratio = doc["cpu_compiled_packet_hops_per_s"] / doc["cpu_packet_hops_per_s"]
    assert doc["cpu_compiled_ratio"] == pytest.approx(ratio)


def test_run_engine_auto_says_compiled_and_matches_simpy(tmp_path: Path):
    import json

    exp = ROOT / "experiments" / "same-vs-cross-latency.toml"
    out = {}
    for engine in ("simpy", "auto"):
        d = tmp_path / engine
        r = run_cli("run", exp, "--quick", "--no-plots", "--out", d, "--engine", engine)
        assert r.exit_code == 0, r.output
        man = json.loads((d / "manifest.json").read_text())
        ran = "simpy" if engine == "simpy" else "compiled"
        assert r.stderr.splitlines()[-1].startswith(f"engine: {ran} (")
        assert (man["engine"], man["engine_requested"]) == (ran, engine)
        assert man["engine_runs"] == {ran: man["runs_expected"]}
        out[engine] = (d / "runs.csv").read_bytes()
    assert out["simpy"] == out["auto"]
    # the engine is not part of a run's identity: a resume with the other engine reuses all
    r = run_cli("run", exp, "--quick", "--no-plots", "--out", tmp_path / "simpy", "--resume")
    assert r.exit_code == 0 and "0 runs done, 24 reused" in r.stdout, r.output


def test_experiment_file_engine_compiled_refuses_closed_loop(tmp_path: Path):
    text = (ROOT / "experiments" / "same-vs-cross-throughput.toml").read_text()
    exp = tmp_path / "tcp.toml"
    exp.write_text(
        'engine = "compiled"\n' + text.replace('"scenarios/', f'"{ROOT}/experiments/scenarios/')
    )
    r = run_cli("run", exp, "--quick", "--out", tmp_path / "out")
    assert r.exit_code == 2 and not (tmp_path / "out").exists()
    err = r.stderr.strip()
    assert err.startswith(f"error: {exp}: engine: engine 'compiled': ") and "\n" not in err
    assert "flows.0.kind" in err and "'probe' is tcp" in err and 'engine = "auto"' in err
    r = run_cli("run", exp, "--quick", "--dry-run", "--engine", "auto")
    assert r.exit_code == 0, r.output
    r = run_cli("run", exp, "--quick", "--dry-run", "--engine", "compiled")
    assert r.exit_code == 2 and "--engine: engine 'compiled'" in r.stderr


def test_plan_batch_mixed_counts():
    from sim.engine.compiled.select import describe, plan_batch

    closed = scenario([{"name": "rr", "kind": "request-response", "src": "client", "dst": "web"}])
    open_loop = scenario([poisson("p", "client", "web", load=0.5)])
    plan = plan_batch([open_loop, closed, open_loop], "auto", 3, "e.toml", "engine")
    assert plan["engine"] == "mixed" and plan["engine_of"] == ["compiled", "simpy", "compiled"]
    assert plan["engine_runs"] == {"compiled": 6, "simpy": 3}
    assert describe(plan).startswith("engine: mixed (compiled 6 runs, simpy 3 runs; simpy where")
    assert plan_batch([closed], "simpy", 2, "e.toml", "engine")["engine_runs"] == {"simpy": 2}
