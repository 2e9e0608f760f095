"""Synthetic results directories in the exact form of the results contract (issue 10).

The batch writes ``runs.parquet``/``runs.csv`` (one row per run and flow),
``stations.parquet``/``stations.csv`` (one row per run and station),
``summary.csv`` and ``stations_summary.csv`` (per configuration and flow or
station: ``M.mean, M.ci95, M.n``) and ``manifest.json`` (with ``swept``,
``units``, ``params``, ``engine``, ``question``/``description`` and ``[plots]``).
The plots and the report are tested on these directories, so they do not depend
on a batch run; the numbers are made up (a queue that grows with load), but the
form is the contract's, column for column.
"""

from __future__ import annotations

import functools
import itertools
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

METRICS = (
    "sent", "delivered", "dropped", "in_flight", "drop_rate", "throughput_gbps",
    "offered_gbps", "latency_mean_us", "latency_p50_us", "latency_p90_us", "latency_p99_us",
    "latency_p99.9_us", "latency_max_us", "rtt_mean_us", "rtt_p50_us", "rtt_p99_us",
    "transactions_per_s", "retransmissions",
)  # fmt: skip
STATION_METRICS = (
    "utilization", "wait_mean_us", "sojourn_mean_us", "queue_mean_pkts", "queue_max_pkts",
    "drops",
)  # fmt: skip
UNIT_OF_SUFFIX = {"_gbps": "Gbit/s", "_bytes": "B", "_us": "us", "_s": "s", "_pps": "packets/s",
                  "_pkts": "packets"}  # fmt: skip

#: (flow, role, kind) of the synthetic experiment: a latency probe, a bulk
#: neighbour, and a request/response flow (RTT, no one-way latency).
FLOWS = (
    ("probe", "measured", "poisson"),
    ("neighbour", "background", "bulk"),
    ("rpc", "measured", "request_response"),
)
#: (station, station_kind, node) on every path (names need not say their kind).
STATIONS = (
    ("node1/veth-a:from-pod", "veth", "node1"),
    ("node1/cbr0", "bridge", "node1"),
    ("node1/forward", "forward", "node1"),
    ("node1/eth0:tx", "nic_tx", "node1"),
    ("gateway/forward", "gateway", "gateway"),
    ("node2/eth0:rx", "nic_rx", "node2"),
    ("node2/veth-b:to-pod", "veth", "node2"),
)
SAME_NODE_PATH = ("node1/veth-a:from-pod", "node1/cbr0", "node2/veth-b:to-pod")


def unit_of(param: str) -> str | None:
    """Unit of a parameter from its name's suffix (the contract's rule)."""
    for suffix, unit in UNIT_OF_SUFFIX.items():
        if param.endswith(suffix):
            return unit
    return None


def _flow_row(rng, flow: str, kind: str, load: float, cross: bool) -> dict:
    """One run's metrics of one flow (NaN where a metric does not apply)."""
    base = 10.0 if cross else 2.0
    lat = base / max(1e-3, 1.0 - load) * (1.0 + 0.05 * rng.standard_normal())
    sent = int(1000 * load) + 10
    dropped = int(sent * max(0.0, load - 0.9))
    row = dict.fromkeys(METRICS, math.nan)
    noise = 1 + 0.01 * rng.standard_normal()
    row.update(sent=sent, delivered=sent - dropped, dropped=dropped, in_flight=0,
               drop_rate=dropped / sent, offered_gbps=10 * load,
               throughput_gbps=10 * load * (1 - dropped / sent) * noise,
               retransmissions=0)  # fmt: skip
    if kind == "request_response":
        row.update(rtt_mean_us=2 * lat, rtt_p50_us=1.8 * lat, rtt_p99_us=5 * lat,
                   transactions_per_s=1e6 / (2 * lat))  # fmt: skip
    else:
        row.update(latency_mean_us=lat, latency_p50_us=0.9 * lat, latency_p90_us=1.8 * lat,
                   latency_p99_us=4 * lat, **{"latency_p99.9_us": 6 * lat},
                   latency_max_us=8 * lat)  # fmt: skip
    return row


def _configs(swept: dict) -> list[dict]:
    names = list(swept)
    return [dict(zip(names, vals, strict=True)) for vals in itertools.product(*swept.values())]


def _load(params: dict, x: str) -> float:
    """Offered load fraction of a configuration (grows with x, 0.05..0.95)."""
    values = sorted(_SWEEP_VALUES[x])
    i = values.index(params[x])
    return 0.05 + 0.9 * i / max(1, len(values) - 1)


_SWEEP_VALUES: dict = {}


def _runs_and_stations(swept: dict, x: str, reps: int, seed: int):
    _SWEEP_VALUES.clear()
    _SWEEP_VALUES.update(swept)
    rng = np.random.default_rng(seed)
    runs, stations = [], []
    for ci, params in enumerate(_configs(swept)):
        cross = params.get("placement", "cross-node") == "cross-node"
        load = _load(params, x)
        path = [s for s, _, _ in STATIONS] if cross else list(SAME_NODE_PATH)
        for rep in range(reps):
            head = {"run_id": f"c{ci:03d}-r{rep:02d}", "config": ci, "replication": rep,
                    "seed": 1000 + 17 * ci + rep, **params}  # fmt: skip
            for flow, role, kind in FLOWS:
                row = {**head, "flow": flow, "role": role, "kind": kind,
                       **_flow_row(rng, flow, kind, load, cross)}  # fmt: skip
                row["drops.buffer_full"] = row["dropped"]
                row["drops.no_route"] = 0
                row["path"] = " > ".join(path)
                row["warnings"] = ""
                runs.append(row)
            for name, skind, node in STATIONS:
                on = name in path
                st = {**head, "station": name, "station_kind": skind, "node": node,
                      "utilization": load * 0.8 if on else 0.0,
                      "wait_mean_us": (0.3 * load / (1 - load) if on else math.nan),
                      "sojourn_mean_us": (1.0 + 0.3 * load / (1 - load) if on else math.nan),
                      "queue_mean_pkts": load if on else 0.0,
                      "queue_max_pkts": float(int(10 * load)) if on else 0.0,
                      "drops": 0}  # fmt: skip
                st["sojourn_mean_us"] = (
                    st["sojourn_mean_us"] * (1 + 0.02 * rng.standard_normal()) if on else math.nan
                )
                stations.append(st)
    return pd.DataFrame(runs), pd.DataFrame(stations)


@functools.lru_cache
def _t975(dof: int) -> float:
    return float(stats.t.ppf(0.975, dof))


def _ci95(v: np.ndarray) -> tuple[float, float, int]:
    v = v[~np.isnan(v)]
    n = int(v.size)
    if n == 0:
        return math.nan, math.nan, 0
    if n < 2:
        return float(v.mean()), math.nan, n
    half = _t975(n - 1) * v.std(ddof=1) / math.sqrt(n)
    return float(v.mean()), float(half), n


def summarize(df: pd.DataFrame, params: list[str], key: str, metrics) -> pd.DataFrame:
    """Per (config, ``key``): ``M.mean, M.ci95, M.n`` of every metric, as the contract."""
    extra = ["role", "kind"] if key == "flow" else ["station_kind"]
    rows = []
    for (config, name), sub in df.groupby(["config", key], sort=False):
        first = sub.iloc[0]
        row = {"config": config, **{p: first[p] for p in params}, key: name,
               **{e: first[e] for e in extra}, "n": len(sub)}  # fmt: skip
        for m in metrics:
            row[f"{m}.mean"], row[f"{m}.ci95"], row[f"{m}.n"] = _ci95(sub[m].to_numpy(float))
        rows.append(row)
    return pd.DataFrame(rows)


def write_results(
    root: Path,
    swept: dict | None = None,
    plots: dict | None = None,
    reps: int = 3,
    seed: int = 1,
) -> Path:
    """Write a synthetic results directory at ``root`` in the contract's form.

    Parameters
    ----------
    root : Path
        Directory to create.
    swept : dict, optional
        ``{param: [values]}`` in sweep order (default placement x probe rate).
    plots : dict, optional
        The experiment's ``[plots]`` table.
    reps : int
        Replications per configuration.
    seed : int
        Seed of the made-up numbers.
    """
    swept = swept or {"placement": ["same-node", "cross-node"],
                      "flows.probe.rate_gbps": [0.5, 1.0, 2.0, 4.0, 6.0, 8.0]}  # fmt: skip
    plots = {"x": None, "x_label": None, "group": "placement", "log_latency": True,
             **(plots or {})}  # fmt: skip
    params = list(swept)
    x = plots.get("x") or next((p for p in params if p != "placement"), params[0])
    runs, stations = _runs_and_stations(swept, x, reps, seed)
    root.mkdir(parents=True)
    runs.to_parquet(root / "runs.parquet", index=False)
    runs.to_csv(root / "runs.csv", index=False)
    stations.to_parquet(root / "stations.parquet", index=False)
    stations.to_csv(root / "stations.csv", index=False)
    metrics = [*METRICS, "drops.buffer_full", "drops.no_route"]
    summarize(runs, params, "flow", metrics).to_csv(root / "summary.csv", index=False)
    summarize(stations, params, "station", STATION_METRICS).to_csv(
        root / "stations_summary.csv", index=False
    )
    manifest = {
        "schema_version": 2, "podnetsim_version": "0.1.0", "git_commit": "0" * 40,
        "python": "3.11.7", "simpy": "4.1.2", "numpy": "2.4.6", "pandas": "3.1.1",
        "experiment": "synthetic <study>", "experiment_file": "experiments/synthetic.toml",
        "experiment_sha256": "ab" * 32, "quick": False, "parameters": params,
        "swept": swept, "units": {p: unit_of(p) for p in params},
        "params": {"file": "params.toml", "sha256": "cd" * 32}, "engine": "simpy",
        "question": "Does a <bulk> neighbour slow the probe & by how much?",
        "description": "Synthetic results in the contract's form, for tests.",
        "configurations": int(runs["config"].nunique()), "replications": reps,
        "base_seed": seed, "run_count": int(runs["run_id"].nunique()),
        "runs_expected": int(runs["run_id"].nunique()),
        "started_utc": "2026-12-02T00:00:00+00:00", "finished_utc": "2026-12-02T00:01:00+00:00",
        "plots": plots, "executor": {"kind": "local", "jobs": 1}, "failures": [],
    }  # fmt: skip
    (root / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return root
