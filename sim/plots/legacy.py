"""Figures of results in the pooled one-row-per-run form (before issue 10).

TO BE DELETED AT MERGE: once the batch writes the per-flow tables (issue 10's
results contract), :mod:`sim.plots.figures` draws everything and this module,
with its station-name parsing, goes. It keeps today's batches plotting meanwhile.

Every figure has a title, axis labels with units, a legend, and 95% confidence
bands (t-based, across replications) where there is more than one replication.
Written as PNG (for the README and slides) and SVG (for documents).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from sim.batch.files import atomic_write, write_error  # noqa: E402
from sim.batch.store import ci_halfwidth  # noqa: E402
from sim.errors import UserError  # noqa: E402

PRETTY = {
    "placement": "placement",
    "flows.probe.rate_gbps": "offered load (Gbit/s)",
    "flows.probe.load": "offered load (fraction of path bottleneck)",
    "flows.probe.size_bytes": "packet size (bytes)",
    "pod_pairs": "pod pairs per node",
}


def _label(param: str, manifest_label: str | None = None) -> str:
    if manifest_label:
        return manifest_label
    return PRETTY.get(param, param)


def _plain_log(ax, axis: str = "y") -> None:
    """Log scale with plain numbers (1, 2, 5, 10, 20 ...) instead of 2x10^0."""
    from matplotlib.ticker import LogLocator, ScalarFormatter

    target = ax.yaxis if axis == "y" else ax.xaxis
    fmt = ScalarFormatter()
    fmt.set_scientific(False)
    target.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    target.set_major_formatter(fmt)
    target.set_minor_formatter(plt.NullFormatter())


def _save(fig, out: Path, name: str) -> list[Path]:
    """Write ``name``.png and .svg atomically (a failed write leaves no partial file)."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        plt.close(fig)
        raise write_error(out, exc) from None
    paths = [out / f"{name}.png", out / f"{name}.svg"]
    fig.tight_layout()

    def png(tmp: Path) -> None:
        fig.savefig(tmp, format="png", dpi=150, bbox_inches="tight", metadata={"Software": None})

    def svg(tmp: Path) -> None:
        # no date and a fixed id salt: the same results give byte-identical SVGs
        with plt.rc_context({"svg.hashsalt": "podnetsim"}):
            fig.savefig(tmp, format="svg", bbox_inches="tight", metadata={"Date": None})

    try:
        atomic_write(paths[0], png)
        atomic_write(paths[1], svg)
    finally:
        plt.close(fig)
    return paths


def _groups(df: pd.DataFrame, params: list[str], x: str | None) -> list[tuple[str, pd.DataFrame]]:
    keys = [p for p in params if p != x]
    if not keys:
        return [("all", df)]
    out = []
    for vals, sub in df.groupby(keys, sort=False):
        vals = vals if isinstance(vals, tuple) else (vals,)
        label = ", ".join(
            str(v) if k == "placement" else f"{k.split('.')[-1]}={v}"
            for k, v in zip(keys, vals, strict=True)
        )
        out.append((label, sub))
    return out


def _agg(sub: pd.DataFrame, x: str, col: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    xs, means, cis = [], [], []
    for xv, g in sub.groupby(x, sort=True):
        v = g[col].to_numpy(dtype=float)
        ok = v[~np.isnan(v)]
        xs.append(float(xv))
        means.append(ok.mean() if ok.size else math.nan)
        cis.append(ci_halfwidth(v))
    return np.asarray(xs), np.asarray(means), np.nan_to_num(np.asarray(cis))


def _line(ax, sub, x, col, label, color, marker="o", log=False):
    xs, m, ci = _agg(sub, x, col)
    ax.plot(xs, m, marker=marker, ms=4, color=color, label=label)
    lo = m - ci
    if log:  # a band reaching zero or below cannot be drawn on a log axis: clip it
        lo = np.maximum(lo, m / 10.0)
    ax.fill_between(xs, lo, m + ci, color=color, alpha=0.2, linewidth=0)


def _subtitle(manifest: dict) -> str:
    reps = manifest.get("replications", "?")
    quick = " (quick run)" if manifest.get("quick") else ""
    return f"mean of {reps} replications, shaded: 95% CI{quick}"


def latency_vs_load(df, params, x, xlabel, manifest, out, log):
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharex=True)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (label, sub) in enumerate(_groups(df, params, x)):
        c = colors[i % len(colors)]
        _line(axes[0], sub, x, "latency_mean_us", label, c, log=log)
        _line(axes[1], sub, x, "latency_p99_us", label, c, marker="s", log=log)
    for ax, what in zip(axes, ("mean", "99th percentile"), strict=True):
        ax.set_xlabel(xlabel)
        ax.set_ylabel(f"one-way latency, {what} (µs)")
        ax.set_title(f"{what} latency")
        if log:
            ax.set_yscale("log")
            _plain_log(ax, "y")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"{manifest['experiment']}: one-way latency\n{_subtitle(manifest)}", fontsize=10)
    return _save(fig, out, "latency-vs-load")


def throughput_vs_load(df, params, x, xlabel, manifest, out):
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    top = 0.0
    for i, (label, sub) in enumerate(_groups(df, params, x)):
        c = colors[i % len(colors)]
        xs, off, _ = _agg(sub, x, "offered_gbps")
        _, thr, ci = _agg(sub, x, "throughput_gbps")
        use_offered = not np.all(np.isnan(off))
        xv = off if use_offered else xs
        ax.plot(xv, thr, marker="o", ms=4, color=c, label=label)
        ax.fill_between(xv, thr - ci, thr + ci, color=c, alpha=0.2, linewidth=0)
        top = max(top, np.nanmax(xv) if xv.size else 0.0)
    if top > 0 and "offered_gbps" in df and not df["offered_gbps"].isna().all():
        ax.plot([0, top], [0, top], ls="--", color="grey", lw=1, label="delivered = offered")
        ax.set_xlabel("offered load (Gbit/s)")
    else:
        ax.set_xlabel(xlabel)
    ax.set_ylabel("delivered throughput (Gbit/s)")
    ax.set_title(
        f"{manifest['experiment']}: delivered throughput\n{_subtitle(manifest)}", fontsize=10
    )
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, out, "throughput-vs-load")


def drops(df, params, x, xlabel, manifest, out):
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (label, sub) in enumerate(_groups(df, params, x)):
        sub = sub.assign(drop_pct=sub["drop_rate"] * 100.0)
        _line(ax, sub, x, "drop_pct", label, colors[i % len(colors)])
    ax.set_xlabel(xlabel)
    ax.set_ylabel("packets dropped (% of sent)")
    ax.set_title(f"{manifest['experiment']}: packets dropped\n{_subtitle(manifest)}", fontsize=10)
    ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, out, "drops")


def latency_cdf(df, params, x, xlabel, manifest, out, at):
    qcols = [c for c in df.columns if c.startswith("cdf.q")]
    pct = np.array([float(c[5:]) for c in qcols])
    order = np.argsort(pct)
    xs_all = sorted(df[x].unique()) if x else [None]
    chosen = list(at) if at else ([xs_all[0], xs_all[-1]] if len(xs_all) > 1 else xs_all)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    styles = ["-", "--", ":", "-."]
    for i, (label, sub) in enumerate(_groups(df, params, x)):
        for j, xv in enumerate(chosen):
            s = sub if x is None else sub[np.isclose(sub[x].astype(float), float(xv))]
            if s.empty:
                continue
            q = s[qcols].to_numpy(dtype=float).mean(axis=0)[order]
            lab = label if x is None else f"{label} @ {xv}"
            ax.plot(
                q,
                pct[order] / 100.0,
                color=colors[i % len(colors)],
                ls=styles[j % len(styles)],
                label=lab,
            )
    ax.set_xscale("log")
    _plain_log(ax, "x")
    ax.set_xlabel("one-way latency (µs)")
    ax.set_ylabel("fraction of packets ≤ latency")
    where = f" at {xlabel} = {', '.join(str(c) for c in chosen)}" if x else ""
    ax.set_title(
        f"{manifest['experiment']}: latency CDF{where}\n(mean quantiles over replications)",
        fontsize=10,
    )
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, out, "latency-cdf")


def station_category(name: str) -> str:
    """Legend category of a station name (``node1/veth-web:to-pod`` -> ``veth``)."""
    owner, _, element = name.partition("/")
    if owner == "gateway":
        return "gateway forward" if element == "forward" else "gateway link"
    if element.startswith("veth"):
        return "veth"
    if element in ("cbr0", "docker0") or not element.startswith(("eth0", "forward", "lo")):
        if element == "lo":
            return "loopback"
        return "bridge" if not element.startswith("eth0") else element.replace(":", " ")
    if element == "forward":
        return "node forward + netfilter"
    if element == "lo":
        return "loopback"
    return element.replace(":", " ")


def _saturated(df: pd.DataFrame, x: str) -> pd.Series:
    """Per x value: whether any run dropped packets or fell behind the offered load."""
    behind = df["throughput_gbps"] < 0.97 * df["offered_gbps"].fillna(0.0)
    bad = (df["drop_rate"].fillna(0.0) > 0) | behind
    return bad.groupby(df[x]).any()


def station_breakdown(df, params, x, xlabel, manifest, out, at):
    if x is not None:
        if at is None:
            sat = _saturated(df, x)
            clean = sat[~sat]
            at = float(clean.index.max()) if len(clean) else float(sat.index.min())
        df = df[np.isclose(df[x].astype(float), float(at))]
    groups = _groups(df, [p for p in params if p != x], None)
    fig, ax = plt.subplots(figsize=(10, 1.6 + 0.8 * max(1, len(groups))))
    cmap = plt.get_cmap("tab10")
    cats: dict[str, int] = {}
    labels = []
    widest = max(float(sub["latency_mean_us"].mean()) for _, sub in groups) if groups else 1.0
    for gi, (label, sub) in enumerate(groups):
        path = str(sub["path"].iloc[0]).split(" > ")
        left = 0.0
        for st in path:
            col = f"station.{st}.sojourn_us"
            if col not in sub:
                continue
            v = float(sub[col].mean())
            cat = station_category(st)
            new = cat not in cats
            if new:
                cats[cat] = len(cats)
            ax.barh(
                gi,
                v,
                left=left,
                color=cmap(cats[cat] % 10),
                edgecolor="white",
                height=0.6,
                label=cat if new else None,
            )
            if v > 0.07 * widest:
                ax.text(
                    left + v / 2,
                    gi,
                    st.split("/", 1)[0],
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="black",
                )
            left += v
        prop = float(sub["latency_mean_us"].mean()) - left
        if prop > 1e-3:
            new = "propagation" not in cats
            if new:
                cats["propagation"] = len(cats)
            ax.barh(
                gi,
                prop,
                left=left,
                color="lightgrey",
                edgecolor="white",
                height=0.6,
                hatch="//",
                label="propagation" if new else None,
            )
        labels.append(f"{label}\n(mean latency {float(sub['latency_mean_us'].mean()):.2f} µs)")
    ax.set_yticks(range(len(groups)), labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("mean time at each station along the path (queueing + service, µs)")
    where = f"\nat {xlabel} = {at}" if x is not None else ""
    ax.set_title(f"{manifest['experiment']}: where a packet spends its time{where}", fontsize=10)
    ax.legend(
        fontsize=7,
        ncol=min(5, len(cats)),
        loc="upper center",
        bbox_to_anchor=(0.5, -0.3),
        frameon=False,
    )
    ax.grid(True, axis="x", alpha=0.3)
    return _save(fig, out, "station-breakdown")


def draw_all(results_dir: str | Path) -> list[Path]:
    """Draw every plot the experiment asks for from ``results_dir``.

    Raises
    ------
    UserError
        The directory holds no results, or damaged ones (one line naming the file).
    """
    root = Path(results_dir)
    df, manifest = read_results(root)
    spec = manifest["plots"]
    params = manifest["parameters"]
    group = spec.get("group", "placement")
    numeric = [p for p in params if p != group and pd.api.types.is_numeric_dtype(df[p])]
    x = spec.get("x") or (numeric[0] if numeric else None)
    if x is not None and not pd.api.types.is_numeric_dtype(df[x]):
        raise _damaged(root / "manifest.json", f"plots.x {x!r} has non-numeric values", "plots.x")
    xlabel = _label(x, spec.get("x_label")) if x else ""
    out = root / "plots"
    kinds = spec.get("kinds", [])
    made: list[Path] = []
    if x is not None:
        if "latency-vs-load" in kinds:
            made += latency_vs_load(
                df, params, x, xlabel, manifest, out, spec.get("log_latency", True)
            )
        if "throughput-vs-load" in kinds:
            made += throughput_vs_load(df, params, x, xlabel, manifest, out)
        if "drops" in kinds:
            made += drops(df, params, x, xlabel, manifest, out)
    if "latency-cdf" in kinds:
        made += latency_cdf(df, params, x, xlabel, manifest, out, spec.get("cdf_at") or ())
    if "station-breakdown" in kinds:
        made += station_breakdown(df, params, x, xlabel, manifest, out, spec.get("breakdown_at"))
    return made


#: Columns every runs table has that the plots read.
_NEEDED = ("config", "latency_mean_us", "latency_p99_us", "throughput_gbps", "drop_rate", "path")


def read_results(root: Path) -> tuple[pd.DataFrame, dict]:
    """The runs table and manifest of a results directory, checked for what plots use.

    Raises
    ------
    UserError
        Missing, unreadable, empty or inconsistent files.
    """
    runs, manifest_p = root / "runs.parquet", root / "manifest.json"
    if not runs.is_file() or not manifest_p.is_file():
        raise UserError(
            f"{str(root)!r} holds no results (runs.parquet and manifest.json)",
            field="DIR",
            fix="give the --out directory of a finished `podnetsim run`",
        )
    manifest = _read_manifest(manifest_p)
    try:
        df = pd.read_parquet(runs)
    except Exception as exc:  # pyarrow raises many types for a damaged file
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise _damaged(runs, f"cannot be read ({reason})") from None
    if df.empty:
        raise _damaged(runs, "holds no runs")
    missing = [c for c in (*_NEEDED, *manifest["parameters"]) if c not in df.columns]
    if missing:
        raise _damaged(runs, f"has no column {missing[0]!r}")
    x = manifest["plots"].get("x")
    if x is not None and x not in manifest["parameters"]:
        names = ", ".join(manifest["parameters"]) or "none"
        raise _damaged(
            manifest_p, f"plots.x {x!r} is not a parameter (parameters: {names})", "plots.x"
        )
    return df, manifest


def _read_manifest(path: Path) -> dict:
    try:
        manifest = json.loads(path.read_bytes().decode("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise _damaged(path, f"is not readable JSON ({exc})") from None
    if not isinstance(manifest, dict):
        raise _damaged(path, "is not a JSON object")
    plots, params = manifest.get("plots", {}), manifest.get("parameters", [])
    if not isinstance(plots, dict):
        raise _damaged(path, "plots is not an object", "plots")
    if not (isinstance(params, list) and all(isinstance(p, str) for p in params)):
        raise _damaged(path, "parameters is not a list of names", "parameters")
    checks = (
        ("kinds", lambda v: isinstance(v, list), "a list"),
        ("x", lambda v: v is None or isinstance(v, str), "a parameter name"),
        ("cdf_at", lambda v: isinstance(v, list) and all(_is_num(a) for a in v), "numbers"),
        ("breakdown_at", lambda v: v is None or _is_num(v), "a number"),
        ("log_latency", lambda v: isinstance(v, bool), "true or false"),
    )
    for key, ok, what in checks:
        if key in plots and not ok(plots[key]):
            raise _damaged(path, f"plots.{key} is not {what}", f"plots.{key}")
    manifest.setdefault("experiment", path.parent.name)
    return {**manifest, "plots": plots, "parameters": params}


def _is_num(v) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _damaged(path: Path, problem: str, field: str | None = None) -> UserError:
    return UserError(
        problem,
        file=str(path),
        field=field,
        fix="run the batch again (podnetsim run EXPERIMENT --out DIR --resume rewrites "
        "the tables and manifest)",
    )
