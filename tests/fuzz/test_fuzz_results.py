"""Fuzz: damaged results directories and odd options never give ``plot``/``report`` a traceback.

A real results directory (``tests/data/batch/small.toml``, with ``[plots]
cdf_at`` and ``breakdown_at`` set so every figure is drawn) is copied and
damaged by a seeded mutator: ``manifest.json`` mutated as a document (type
swaps, edge numbers, deleted keys) or as bytes (truncated, not UTF-8, empty),
``runs.parquet`` / ``latency_quantiles.parquet`` rewritten with columns dropped,
retyped or emptied or replaced by garbage, the CSV summaries mutated line by line
or stripped of a column, a file replaced by a directory (or a directory by a
file), files deleted. Then ``podnetsim plot DIR`` (with random ``--x``, ``--y``,
``--by``, ``--flow``, ``--logx``/``--logy``) or ``podnetsim report DIR [-o ...]``
runs in process. Each case must end with exit 0 or 2, no traceback, and an exit
2 must be one ``error: FILE: ... Fix: ...`` line naming the directory, a file in
it or the option. ``FUZZ_SEED`` and ``FUZZ_CASES`` run other or more cases.
"""

from __future__ import annotations

import collections
import json
import os
import random
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sim.batch import run_experiment

from .mutate import EDGE_NUMBERS, OTHER_TYPES, _mutate_bytes, mutants, mutate_csv
from .test_fuzz_inputs import invoke, verdict

SMALL = Path(__file__).resolve().parents[1] / "data" / "batch" / "small.toml"
SEED = int(os.environ.get("FUZZ_SEED", "20261202"))
CASES = int(os.environ.get("FUZZ_CASES", "0")) or 40  # ~1 min in CI; FUZZ_CASES=1000 to dig
PARQUETS = ("runs.parquet", "latency_quantiles.parquet", "stations.parquet")
CSVS = ("summary.csv", "stations_summary.csv", "runs.csv")
PLOTS_KEYS = ("kinds", "x", "x_label", "group", "cdf_at", "breakdown_at", "log_latency")
READ_COLUMNS = (
    "config",
    "flow",
    "role",
    "kind",
    "placement",
    "flows.probe.rate_gbps",
    "latency_mean_us.mean",
    "latency_mean_us.ci95",
    "latency_p99_us.mean",
    "throughput_gbps.mean",
    "drop_rate.ci95",
    "station",
    "station_kind",
    "sojourn_mean_us.mean",
    "sojourn_mean_us.ci95",
)
NAMES = (
    "flows.probe.rate_gbps",
    "placement",
    "config",
    "flow",
    "latency_mean_us",
    "latency_p99_us",
    "rtt_mean_us",
    "throughput_gbps",
    "drop_rate",
    "latency_mean_us.mean",
    "drops.buffer_full",
    "probe",
    "nope",
    "",
    "a" * 300,
    "flows.probe",
)


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """A small finished batch whose manifest asks for every figure."""
    out = tmp_path_factory.mktemp("ref") / "res"
    run_experiment(SMALL, out, plots=False)
    m = json.loads((out / "manifest.json").read_text())
    m["plots"].update(cdf_at=[1.0, 4.0], breakdown_at=4.0)
    (out / "manifest.json").write_text(json.dumps(m, indent=2))
    return out


def _damage_manifest(root: Path, rng: random.Random) -> str:
    path = root / "manifest.json"
    if rng.random() < 0.25:
        what, raw = _mutate_bytes(path.read_bytes(), rng)
        path.write_bytes(raw)
        return f"manifest.json: {what}"
    doc = json.loads(path.read_text())
    if rng.random() < 0.4:  # the [plots] table: the figures read every field of it
        key = rng.choice(PLOTS_KEYS)
        doc["plots"][key] = value = rng.choice((*EDGE_NUMBERS[:13], *OTHER_TYPES))
        path.write_text(json.dumps(doc, default=str))
        return f"manifest.json: plots.{key} = {value!r}"
    mutant = next(mutants(doc, rng.randrange(2**31), 1, p_bytes=0))
    path.write_text(json.dumps(mutant.doc, default=str))
    return f"manifest.json: {mutant.what}"


def _odd_column(rng: random.Random, n: int) -> tuple[str, object]:
    roll = rng.randrange(5)
    if roll == 0:
        return "strings", [rng.choice(("x", "", "1e3", "nan")) for _ in range(n)]
    if roll == 1:
        return "NaN", [float("nan")] * n
    if roll == 2:
        return "edge numbers", [float(rng.choice(EDGE_NUMBERS[:13])) for _ in range(n)]
    if roll == 3:
        return "booleans", [bool(i % 2) for i in range(n)]
    return "negative", [-1.0] * n


def _damage_parquet(root: Path, rng: random.Random) -> str:
    name = rng.choice(PARQUETS)
    path = root / name
    op = rng.randrange(6)
    if op == 0:
        data = path.read_bytes()
        cut = rng.randrange(len(data))
        path.write_bytes(data[:cut] if rng.random() < 0.7 else data[:cut] + b"\x00garbage")
        return f"{name} cut at byte {cut}"
    df = pd.read_parquet(path)
    col = rng.choice(list(df.columns))
    if op == 1:
        df = df.drop(columns=[col])
        what = f"column {col!r} dropped"
    elif op == 2:
        how, values = _odd_column(rng, len(df))
        df[col] = values
        what = f"column {col!r} -> {how}"
    elif op == 3:
        df = df.iloc[: rng.choice((0, 1))]
        what = f"{len(df)} rows left"
    elif op == 4:
        df = df.rename(columns={col: col.upper()})
        what = f"column {col!r} renamed"
    else:
        df = df.sample(frac=1.0, random_state=rng.randrange(100)).iloc[: len(df) // 2]
        what = "half the rows, shuffled"
    df.to_parquet(path)
    return f"{name}: {what}"


def _damage_csv(root: Path, rng: random.Random) -> str:
    name = rng.choice(CSVS)
    path = root / name
    if rng.random() < 0.5:
        what, data = mutate_csv(path.read_bytes(), rng)
        path.write_bytes(data)
        return f"{name}: {what}"
    df = pd.read_csv(path)
    read = [c for c in READ_COLUMNS if c in df.columns]  # the columns a figure reads
    col = rng.choice(read if read and rng.random() < 0.6 else list(df.columns))
    if rng.random() < 0.5:
        df = df.drop(columns=[col])
        what = f"column {col!r} dropped"
    else:
        how, values = _odd_column(rng, len(df))
        df[col] = values
        what = f"column {col!r} -> {how}"
    df.to_csv(path, index=False)
    return f"{name}: {what}"


def _damage_tree(root: Path, rng: random.Random) -> str:
    name = rng.choice((*PARQUETS, *CSVS, "manifest.json", "plots", "runs", "report.html"))
    path = root / name
    op = rng.randrange(3)
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()
    if op == 0:
        path.mkdir()
        return f"{name} is a directory"
    if op == 1:
        path.write_bytes(rng.choice((b"", b"\x00\xff", b"garbage\n")))
        return f"{name} is a file"
    return f"{name} deleted"


DAMAGES = (_damage_manifest, _damage_parquet, _damage_csv, _damage_tree)


def _plot_args(rng: random.Random) -> list[str]:
    args: list[str] = []
    for opt in ("--x", "--y", "--by", "--flow"):
        if rng.random() < 0.3:
            args += [opt, rng.choice(NAMES)]
    if rng.random() < 0.2:
        args.append(rng.choice(("--logx", "--linx", "--logy", "--liny")))
    return args


def _case(reference: Path, tmp: Path, k: int, rng: random.Random) -> tuple[list[str], str]:
    root = tmp / f"case{k}"
    shutil.copytree(reference, root)
    whats = []
    for _ in range(rng.choice((0, 1, 1, 1, 2))):
        try:
            whats.append(rng.choice(DAMAGES)(root, rng))
        except (OSError, ValueError, TypeError):  # a second damage to a file the first one broke
            whats.append("(second damage skipped)")
    if rng.random() < 0.6:
        return ["plot", str(root), *_plot_args(rng)], "; ".join(whats)
    args = ["report", str(root)]
    if rng.random() < 0.3:
        out = rng.choice((root / "r.html", root, tmp / "no" / "r.html", root / "plots"))
        args += [rng.choice(("-o", "--output")), str(out)]
    return args, "; ".join(whats)


def test_fuzz_results_directories(tmp_path, reference) -> None:
    rng = random.Random(SEED)
    outcomes: collections.Counter = collections.Counter()
    failures = []
    for k in range(CASES):
        args, what = _case(reference, tmp_path, k, rng)
        result = invoke(args)
        outcomes[(args[0], result.exit_code)] += 1
        names = ("podnetsim", *(a for a in args if a.startswith("-") or "/" in a))
        problem = verdict(result, names)
        if problem is None and result.exit_code == 1:
            problem = "exit 1 (no verdict was asked for)"
        if problem:
            failures.append(f"{what}\n    args: {args}\n    {problem}")
            with open(os.environ.get("FUZZ_REPORT", os.devnull), "a") as log:
                log.write(failures[-1] + "\n")
        shutil.rmtree(tmp_path / f"case{k}", ignore_errors=True)
    print(f"\nfuzz results: {CASES} cases, seed {SEED}; {dict(sorted(outcomes.items()))}")
    assert sum(n for (_, code), n in outcomes.items() if code == 0) >= CASES // 10
    assert not failures, f"{len(failures)} of {CASES} failed:\n" + "\n".join(failures[:40])


def test_damage_is_seeded(tmp_path, reference) -> None:
    """The same seed damages the same way (so a failure can be replayed)."""
    runs = []
    for _ in range(2):
        rng = random.Random(SEED)
        runs.append([_case(reference, tmp_path / str(len(runs)), k, rng) for k in range(12)])
    assert [w for _, w in runs[0]] == [w for _, w in runs[1]]
    assert len({w for _, w in runs[0]}) > 4
    assert np.all([a[0] in ("plot", "report") for a, _ in runs[0]])
