"""Build the HTML report of a results directory: one file, nothing fetched to open it.

The experiment's question and parameters, every default figure (PNG, base64 in
``data:`` URIs), the summary table with 95 % t-intervals, the per-station
breakdown (figure and table, grouped by the recorded ``station_kind``), each
measured flow's own time at every hop of its path and the
manifest (versions, commit, seeds, params hash, engine). Rendered by Jinja2 with
autoescaping on, so text from the experiment file is always shown as text.
"""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import jinja2
import numpy as np

from sim.analysis.io import atomic_write_text, write_error
from sim.errors import UserError
from sim.plots.breakdown import breakdown_at
from sim.plots.draw import plt
from sim.plots.figures import figures
from sim.plots.results import Results, read_results
from sim.plots.views import default_x
from sim.report.tables import FLOW_STATION_METRICS, STATION_METRICS, SUMMARY_METRICS, table

#: Manifest fields listed in the report's facts (the whole manifest follows as JSON).
FACTS = (
    "podnetsim_version", "git_commit", "engine", "python", "simpy", "numpy", "pandas",
    "experiment_file", "experiment_sha256", "params", "seed", "base_seed", "replications",
    "duration_s", "warmup_s", "quick", "run_count", "runs_expected", "started_utc",
    "finished_utc", "executor",
)  # fmt: skip


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("sim.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )


def _png_uri(fig) -> str:
    """Return the figure as a ``data:image/png;base64,...`` URI (and close it)."""
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png", dpi=110, bbox_inches="tight", metadata={"Software": None})
    finally:
        plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _at_breakdown(res: Results, df):
    """``(at, x, rows)``: ``df``'s rows at the breakdown's x (all if x is not numeric)."""
    at, x = breakdown_at(res), default_x(res)
    return at, x, df if at is None else df[np.isclose(df[x].astype(float), float(at))]


def _stations_table(res: Results) -> dict | None:
    """Per-station rows at the breakdown's value of x (stations a packet crossed)."""
    if res.stations is None:
        return None
    at, x, st = _at_breakdown(res, res.stations)
    st = st[st["sojourn_mean_us.mean"].notna()]
    keys = ["config", *res.params, "station", "station_kind"]
    keys += ["node"] if "node" in st else []
    return {"at": at, "x": x, **table(st, keys, STATION_METRICS)}


def _flow_stations_table(res: Results) -> dict | None:
    """Each measured flow's own rows per hop of its path, at the breakdown's value of x."""
    if res.flow_stations is None:
        return None
    at, x, fs = _at_breakdown(res, res.flow_stations)
    s = res.summary
    measured = set(s.loc[s["role"] == "measured", "flow"]) or set(s["flow"])
    fs = fs[fs["flow"].isin(measured)]
    keys = ["config", *res.params, "flow", "direction", "hop", "station", "station_kind"]
    return {"at": at, "x": x, **table(fs, keys, FLOW_STATION_METRICS)}


def render_report(results_dir: str | Path) -> str:
    """Return the report of ``results_dir`` as one HTML document.

    Raises
    ------
    UserError
        No results there, or damaged ones (one line naming the file).
    """
    res = read_results(results_dir)
    m = res.manifest
    figs = [{"stem": s, "caption": c, "uri": _png_uri(f)} for s, c, f in figures(res)]
    summary_keys = ["config", *res.params, "flow", "role", "kind", "n"]
    return (
        _environment()
        .get_template("report.html.j2")
        .render(
            title=m.get("experiment", res.root.name),
            question=m.get("question") or "",
            description=m.get("description") or "",
            swept=[
                {"name": p, "unit": res.unit(p) or "–", "listed": ", ".join(map(str, v))}
                for p, v in m["swept"].items()
            ],
            figures=figs,
            summary=table(res.summary, summary_keys, SUMMARY_METRICS),
            stations=_stations_table(res),
            flow_stations=_flow_stations_table(res),
            facts=[(k, _fact(m[k])) for k in FACTS if k in m],
            manifest_json=json.dumps(m, indent=2, sort_keys=True),
        )
    )


def _fact(value) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def build_report(results_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write the report of ``results_dir`` to ``out`` (default ``DIR/report.html``).

    Raises
    ------
    UserError
        No or damaged results, or ``out`` cannot be written.
    """
    read_results(results_dir)  # no or damaged results: say so before blaming the output
    target = Path(out) if out is not None else Path(results_dir) / "report.html"
    if target.is_dir():
        raise UserError(f"{str(target)!r} is a directory", field="-o", fix="give a file name")
    if not target.parent.is_dir():  # checked before the figures are drawn
        raise write_error(target, FileNotFoundError(2, "no such directory"))
    atomic_write_text(target, render_report(results_dir))
    return target
