"""Fuzz: mutated scenario and experiment files and command lines never give a traceback.

Every shipped scenario (experiments/scenarios/*.toml) is mutated by the seeded
mutator in :mod:`mutate` and fed to ``check``, ``trace`` and ``simulate``; every
shipped experiment (experiments/*.toml) to ``check`` and ``run --dry-run``; in
process through click's runner; command lines are mutated too (unknown options,
missing or bad arguments, odd ``--set`` paths and values, odd output paths).
Each case must end with exit 0, 1 or 2, no traceback, and an exit 2 must print
one ``error: FILE: ... Fix: ...`` line naming the file (or the command).

Cases stay fast by construction: ``simulate`` gets a small work ceiling
(``--max-packets``), so no mutant can start a long run. ``FUZZ_SEED`` and
``FUZZ_CASES`` (cases per verb) run other or more cases locally.
"""

from __future__ import annotations

import collections
import os
import random
import re
import signal
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

from sim.cli.main import cli

from .mutate import Mutant, mutants, mutate_csv

SCENARIOS = sorted(
    (Path(__file__).resolve().parents[2] / "experiments" / "scenarios").glob("*.toml")
)
EXPERIMENTS = sorted((Path(__file__).resolve().parents[2] / "experiments").glob("*.toml"))
SEED = int(os.environ.get("FUZZ_SEED", "20261202"))
CASES = int(os.environ.get("FUZZ_CASES", "0")) or None
#: cases per verb in CI: 1,000 in all with the command-line cases
PER_VERB = {"check": 300, "trace": 250, "simulate": 200, "tracefile": 100, "argv": 150}
#: experiment files: ``check`` (validates every configuration, runs nothing) and
#: ``run --dry-run`` (lists the runs); both stop before any simulation
EXPERIMENT_CASES = 300
#: small work ceilings keep every simulate case short whatever the mutant asks
CEILING = ("--max-packets", "3000", "--max-hop-records", "30000")
#: a hang detector, not a speed test: a case still running after this is a bug
HANG_S = 120
ENDPOINTS = (
    "web",
    "api",
    "client",
    "web/nginx",
    "web/zz",
    "node1",
    "intranet",
    "internet",
    "10.0.0.2",
    "10.100.0.3",
    "93.184.216.34",
    "172.17.0.2",
    "999.1.1.1",
    "",
    "-",
    "gateway",
    "a" * 500,
    "web/",
    "/nginx",
    "0.0.0.0",
    "255.255.255.255",
)


class Hang(Exception):
    pass


def _alarm(signum, frame):
    raise Hang


def invoke(args: list[str]):
    """Run the CLI in process; returns the click Result."""
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(HANG_S)
    try:
        return CliRunner().invoke(cli, args, prog_name="podnetsim")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def verdict(result, names: tuple[str, ...]) -> str | None:
    """What is wrong with a case's result, or None."""
    exc = result.exception
    if isinstance(exc, Hang):
        return f"no answer after {HANG_S} s"
    if exc is not None and not isinstance(exc, SystemExit):
        return f"traceback: {type(exc).__name__}: {exc}"[:2000]
    if result.exit_code not in (0, 1, 2):
        return f"exit {result.exit_code}"
    if "Traceback" in result.output:
        return "traceback in output"
    if result.exit_code == 2:
        err = result.stderr.strip()
        if "\n" in err or not err.startswith("error: "):
            return f"exit 2 is not one error line: {err[:500]!r}"
        if " Fix: " not in err:
            return f"exit 2 without a fix: {err[:500]!r}"
        if not any(n in err for n in names):
            return f"exit 2 names neither the file nor the command: {err[:500]!r}"
    return None


def _simulate_args(path: Path, rng: random.Random) -> list[str]:
    args = ["simulate", str(path), "--json", "--duration", rng.choice(("0.002", "0.004"))]
    args += ["--warmup", "0.001"] + list(CEILING)
    return args


def _scenario_case(verb: str, mutant: Mutant, tmp: Path, rng: random.Random) -> list[str]:
    path = tmp / "mutant.toml"
    path.write_bytes(mutant.to_bytes())
    if verb == "check":
        return ["check", str(path)] + (["--strict"] if rng.random() < 0.3 else [])
    if verb == "trace":
        ends = [rng.choice(ENDPOINTS[:12] if rng.random() < 0.7 else ENDPOINTS) for _ in "sd"]
        return ["trace", str(path), *ends] + rng.sample(["--reply", "--json"], rng.randrange(3))
    return _simulate_args(path, rng)


SET_KEYS = (
    "flows.0.load",
    "flows.same-node.rate_pps",
    "nodes.0.name",
    "pods.9.name",
    "a.b.c",
    "simulation.duration_s",
    "costs.veth",
    "flows",
    "nodes",
    "",
    "name.x",
    "pods." + "9" * 30 + ".name",
    "external_hosts.intranet.return_route_to_pods",
)
SET_VALUES = (
    "0",
    "-1",
    "inf",
    "nan",
    "1e400",
    "1e30",
    '"x"',
    "[1, 2]",
    "{a = 1}",
    "true",
    "[[[[",
    "[" * 2000 + "]" * 2000,
    "",
    "'",
    '"unterminated',
    "10.0.0.0/8",
)


def _argv_case(scenario: Path, tmp: Path, rng: random.Random) -> list[str]:
    verb = rng.choice(("check", "trace", "simulate"))
    target = rng.choice((str(scenario), str(tmp), str(tmp / "none.toml"), "/dev/null", ""))
    args = [verb, target]
    if verb == "trace":
        args += [rng.choice(ENDPOINTS) for _ in range(rng.randrange(3))]
    for _ in range(rng.randrange(4)):
        roll = rng.random()
        if roll < 0.4:
            args += ["--set", f"{rng.choice(SET_KEYS)}={rng.choice(SET_VALUES)}"]
        elif roll < 0.5:
            args += ["--set", rng.choice(("novalue", "=3", "  =x"))]
        elif roll < 0.6:
            args += [rng.choice(("--bogus", "-x", "--", "--json=3", "--set"))]
        elif verb == "simulate":
            opt = rng.choice(
                ("--duration", "--warmup", "--seed", "--packets-out", "--hops-out", "--max-packets")
            )
            val = rng.choice(
                (
                    "abc",
                    "-1",
                    "inf",
                    "nan",
                    "0",
                    "1e9",
                    "99999999999999999999",
                    str(tmp / "no" / "p.csv"),
                    str(tmp),
                    str(tmp / "p.txt"),
                    str(tmp / "p.csv"),
                )
            )
            args += [opt, val]
    if verb == "simulate":
        args += list(CEILING) + ["--duration", "0.002", "--warmup", "0.001"] * (rng.random() < 0.8)
    return args


TRACE = b"time_s,size_bytes,src,dst\n" + b"".join(
    b"%.4f,%d,%s,%s\n" % (0.001 + i * 1e-4, 64 + 100 * i, s, d)
    for i, (s, d) in enumerate([(b"client", b"web"), (b"api", b"web"), (b"web", b"intranet")] * 5)
)


def _trace_file_case(scenario: Path, tmp: Path, rng: random.Random) -> tuple[list[str], str]:
    what, data = mutate_csv(TRACE, rng)
    csv = tmp / "trace.csv"
    csv.write_bytes(data)
    window = rng.choice(("", ", start_s=0.0015", ", stop_s=0.002", ", start_s=0.5"))
    flow = f'flows=[{{name="t", kind="trace", trace_file="{csv}"{window}}}]'
    args = ["simulate", str(scenario), "--set", flow, "--json", *CEILING]
    return args + ["--duration", "0.004", "--warmup", "0.001"], what


def _experiment_cases(tmp: Path):
    """Mutants of the shipped experiment files, beside a copy of their scenarios."""
    (tmp / "scenarios").mkdir(exist_ok=True)
    for p in SCENARIOS:
        (tmp / "scenarios" / p.name).write_bytes(p.read_bytes())
    docs = [(p, tomllib.loads(p.read_text(encoding="utf-8"))) for p in EXPERIMENTS]
    n = CASES or EXPERIMENT_CASES
    rng = random.Random(SEED - 1)
    per_doc = -(-n // len(docs))
    for j, (src, doc) in enumerate(docs):
        for mutant in mutants(doc, SEED - 100 * (j + 1), per_doc):
            path = tmp / "mutant-experiment.toml"
            path.write_bytes(mutant.to_bytes())
            if rng.random() < 0.5:
                args = ["check", str(path)]
            else:
                args = ["run", str(path), "--dry-run", "--out", str(tmp / "never-written")]
                args += ["--quick"] if rng.random() < 0.5 else []
            yield "experiment", args, f"{src.name}: {mutant.what}"


def _cases(tmp: Path):
    """(verb, args, description, names the error may carry) for every case."""
    docs = [(p, tomllib.loads(p.read_text(encoding="utf-8"))) for p in SCENARIOS]
    for k, (verb, n) in enumerate(PER_VERB.items()):
        n = CASES or n
        rng = random.Random(SEED + k)
        if verb == "tracefile":
            for _ in range(n):
                args, what = _trace_file_case(SCENARIOS[0], tmp, rng)
                yield verb, args, what
            continue
        if verb == "argv":
            for _ in range(n):
                scenario = rng.choice(SCENARIOS)
                args = _argv_case(scenario, tmp, rng)
                yield verb, args, " ".join(args)[:300]
            continue
        # simulate: mostly nudged numbers, on the scenarios that have flows, so most
        # mutants get past validation into the engine
        mine = [d for d in docs if d[1].get("flows")] if verb == "simulate" else docs
        odds = {"p_bytes": 0.05, "p_nudge": 0.6} if verb == "simulate" else {}
        per_doc = -(-n // len(mine))
        for j, (src, doc) in enumerate(mine):
            for mutant in mutants(doc, SEED + 100 * k + j, per_doc, **odds):
                args = _scenario_case(verb, mutant, tmp, rng)
                yield verb, args, f"{src.name}: {mutant.what}"
    yield from _experiment_cases(tmp)


def test_fuzz_scenarios_and_command_lines(tmp_path) -> None:
    assert SCENARIOS and EXPERIMENTS, "no shipped scenarios or experiments found"
    outcomes: collections.Counter = collections.Counter()
    failures: list[str] = []
    n = 0
    for verb, args, what in _cases(tmp_path):
        result = invoke(args)
        n += 1
        outcomes[(verb, result.exit_code)] += 1
        # the error names a file given, an option given, or the command
        names = ("podnetsim", "''", *(a for a in args if a.startswith("-") or "/" in a))
        problem = verdict(result, names)
        if problem:
            failures.append(f"[{verb}] {what}\n    args: {args[:6]}\n    {problem}")
    by_exit = collections.Counter()
    for (_, code), count in outcomes.items():
        by_exit[code] += count
    print(
        f"\nfuzz: {n} cases, seed {SEED}; by exit status {dict(sorted(by_exit.items()))}; "
        f"by verb {dict(sorted(outcomes.items()))}"
    )
    assert n >= 1300 or CASES, n
    assert not (tmp_path / "never-written").exists()  # --dry-run writes nothing
    if failures:
        Path(os.environ.get("FUZZ_REPORT", os.devnull)).write_text("\n".join(failures))
    assert not failures, f"{len(failures)} of {n} cases failed:\n" + "\n".join(failures[:40])


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_mutator_is_seeded_and_generic(seed) -> None:
    doc = {"name": "e", "sweep": {"load": [0.1, 0.5]}, "runs": [{"a": 1}, {"b": "x"}]}
    first = [m.to_bytes() for m in mutants(doc, seed, 30)]
    assert first == [m.to_bytes() for m in mutants(doc, seed, 30)]
    assert len(set(first)) > 10  # and they differ
    assert doc == {"name": "e", "sweep": {"load": [0.1, 0.5]}, "runs": [{"a": 1}, {"b": "x"}]}
    assert not re.search(rb"Traceback", b"".join(first))
