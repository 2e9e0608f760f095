"""Fuzz: odd ``testbed tcp`` arguments and ``run --params/--set`` files give one line, exit 2.

``testbed tcp`` is fuzzed up to the moment it would build the replica and no
further: the replica's ``build`` is replaced by a stub that stops the case (no
namespace is ever created here), and the tool check by a no-op (so a case
reaches the argument checks on a machine without iperf3). ``run --dry-run``
gets mutated parameter files (``--params``, as ``podnetsim calibrate`` writes
them) and ``--set`` options; it validates every run and runs none.
Each case ends with exit 0 or 2 (or the build stub), never a traceback.
"""

from __future__ import annotations

import collections
import os
import random
import tomllib
from pathlib import Path

import pytest

from .mutate import mutants
from .test_fuzz_inputs import SCENARIOS, SET_KEYS, SET_VALUES, invoke, verdict

SEED = int(os.environ.get("FUZZ_SEED", "20261202"))
CASES = int(os.environ.get("FUZZ_CASES", "0")) or 150
SMALL = Path(__file__).resolve().parents[1] / "data" / "batch" / "small.toml"
#: as `podnetsim calibrate` writes it (sim/validate/params.py)
PARAMS = {
    "costs": {"nat_extra_us": 0.4, "veth": {"per_packet_us": 5.0, "per_byte_ns": 0.01}},
    "calibration": {"endpoint_us": 3.0, "fit_on": ["same-node"], "elements_us": {"veth": 5.0}},
}
SECONDS = ("3", "0.1", "60", "0", "-1", "nan", "inf", "1e400", "abc", "", "60.0001", "0.09")
PREFIXES = ("pns-", "x", "", "-", "a" * 40, "bad/prefix", "p s-", "pns-\u00e9", "0-")
PODS = ("client", "web", "api", "web/nginx", "node1", "nowhere", "", "-", "10.0.0.2")


class Reached(Exception):
    """The case got past every argument check to the replica's build."""


@pytest.fixture
def no_kernel(monkeypatch):
    """Stop ``testbed tcp`` before it touches the kernel."""
    from sim.testbed import netns, replica

    def build(*args, **kwargs):
        raise Reached

    monkeypatch.setattr(replica, "build", build)
    monkeypatch.setattr(netns, "require", lambda tools: None)
    monkeypatch.setattr(netns, "down", lambda prefix, **kw: [])


def _tcp_case(tmp: Path, rng: random.Random, docs) -> list[str]:
    src, doc = rng.choice(docs)
    target = str(src)
    if rng.random() < 0.4:
        path = tmp / "mutant.toml"
        path.write_bytes(next(mutants(doc, rng.randrange(2**31), 1)).to_bytes())
        target = str(path)
    elif rng.random() < 0.1:
        target = rng.choice((str(tmp), str(tmp / "none.toml"), "/dev/null", ""))
    args = ["testbed", "tcp", target]
    for opt in ("--same", "--cross"):
        if rng.random() < 0.9:
            args += [opt, rng.choice(PODS), rng.choice(PODS)]
    if rng.random() < 0.4:
        args += ["--seconds", rng.choice(SECONDS)]
    if rng.random() < 0.3:
        args += ["--prefix", rng.choice(PREFIXES)]
    if rng.random() < 0.3:
        args += ["--set", f"{rng.choice(SET_KEYS)}={rng.choice(SET_VALUES)}"]
    if rng.random() < 0.1:
        args += [rng.choice(("--json", "--bogus", "--same", "--seconds"))]
    return args


def _run_case(tmp: Path, rng: random.Random) -> list[str]:
    path = tmp / "params.toml"
    path.write_bytes(next(mutants(PARAMS, rng.randrange(2**31), 1)).to_bytes())
    params = str(path) if rng.random() < 0.9 else rng.choice((str(tmp), str(tmp / "none.toml")))
    args = ["run", str(SMALL), "--dry-run", "--params", params, "--out", str(tmp / "never")]
    for _ in range(rng.randrange(3)):
        key = rng.choice((*SET_KEYS, "costs.veth.per_packet_us", "costs.nat_extra_us"))
        args += ["--set", f"{key}={rng.choice(SET_VALUES)}"]
    return args + (["--quick"] if rng.random() < 0.5 else [])


def test_fuzz_testbed_tcp_arguments_and_run_params(tmp_path, no_kernel) -> None:
    rng = random.Random(SEED)
    docs = [(p, tomllib.loads(p.read_text(encoding="utf-8"))) for p in SCENARIOS]
    outcomes: collections.Counter = collections.Counter()
    failures = []
    for _ in range(CASES):
        args = _tcp_case(tmp_path, rng, docs) if rng.random() < 0.6 else _run_case(tmp_path, rng)
        result = invoke(args)
        verb = args[1] if args[0] == "testbed" else args[0]
        if isinstance(result.exception, Reached):
            outcomes[(verb, "build")] += 1
            continue
        outcomes[(verb, result.exit_code)] += 1
        names = ("podnetsim", "''", *(a for a in args if a.startswith("-") or "/" in a))
        problem = verdict(result, names)
        if problem is None and result.exit_code == 1:
            problem = "exit 1 (no verdict was asked for)"
        if problem:
            failures.append(f"args: {args}\n    {problem}")
            with open(os.environ.get("FUZZ_REPORT", os.devnull), "a") as log:
                log.write(failures[-1] + "\n")
    print(f"\nfuzz verbs: {CASES} cases, seed {SEED}; {dict(outcomes)}")
    assert outcomes[("tcp", "build")] and outcomes[("run", 0)]  # valid cases get through
    assert not (tmp_path / "never").exists()
    assert not failures, f"{len(failures)} of {CASES} failed:\n" + "\n".join(failures[:40])
