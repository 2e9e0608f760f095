"""Where a packet spends its time: per-station bars from ``flow_stations_summary.csv``.

A flow's bar is the stations of its path in order (a request/response flow's,
then those of its replies' path: its round trip), each segment the flow's own
packets' mean sojourn (queueing + service) at that hop, coloured by the
``station_kind`` the engine recorded, never by parsing the station's name. What
the stations do not account for of the flow's mean one-way latency (link
propagation) is a last segment of its own. Results written before podnetsim
kept per-flow means have only ``stations_summary.csv``: a segment is then the
station's mean over every flow's packets (not one flow's own time where flows
share a station), and the figure says so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from sim.plots.results import Results
from sim.plots.views import RTT_KINDS, default_x, is_numeric


@dataclass(frozen=True)
class Bar:
    """One flow in one configuration.

    Attributes
    ----------
    label : str
        Flow and parameter values.
    segments : list of tuple
        ``(station, station_kind, sojourn_us)`` along the path, in order.
    latency_us : float
        The flow's mean one-way latency (NaN for round-trip flows).
    """

    label: str
    segments: list[tuple[str, str, float]] = field(default_factory=list)
    latency_us: float = math.nan

    @property
    def stations_us(self) -> float:
        """Total mean time at the stations, µs."""
        return float(sum(s[2] for s in self.segments))


def breakdown_at(res: Results) -> object:
    """Choose the value of x for the breakdown.

    ``[plots] breakdown_at``, else the highest x at which no measured flow dropped
    packets, else the lowest (None if x is not numeric).
    """
    x = default_x(res)
    s = res.summary
    if not is_numeric(s[x]):
        return None
    if res.plots.get("breakdown_at") is not None:
        return res.plots["breakdown_at"]
    measured = s[s["role"] == "measured"] if (s["role"] == "measured").any() else s
    dropped = measured["drop_rate.mean"].fillna(0.0).gt(0).groupby(measured[x]).any()
    clean = dropped[~dropped]
    best = clean.index.max() if len(clean) else dropped.index.min()
    return best.item() if hasattr(best, "item") else best


def bars(res: Results) -> tuple[object, list[Bar]]:
    """Return the value of x chosen and a bar per measured flow and configuration there."""
    if res.stations is None:
        return None, []
    x, at = default_x(res), breakdown_at(res)
    s = res.summary
    rows = s if at is None else s[np.isclose(s[x].astype(float), float(at))]
    measured = rows[rows["role"] == "measured"] if (rows["role"] == "measured").any() else rows
    out = []
    for _, row in measured.iterrows():
        label = ", ".join([str(row["flow"]), *(_value(p, row[p]) for p in res.params if p != x)])
        rtt = row["kind"] in RTT_KINDS
        lat = math.nan if rtt else float(row["latency_mean_us.mean"])
        out.append(Bar(label, _segments(res, row["config"], row["flow"], rtt), lat))
    return at, [b for b in out if b.segments]


def per_flow(res: Results) -> bool:
    """Whether the segments are each flow's own means (False: the stations', all flows mixed)."""
    return res.flow_stations is not None


def _segments(res: Results, config, flow: str, rtt: bool) -> list[tuple[str, str, float]]:
    if per_flow(res):
        fs = res.flow_stations
        hit = fs[(fs["config"] == config) & (fs["flow"] == flow)]
        ways = ["forward", "reply"] if rtt else ["forward"]
        hit = hit[hit["direction"].isin(ways)]
        order = hit["direction"].map({w: i for i, w in enumerate(ways)})
        hit = hit.assign(_way=order).sort_values(["_way", "hop"])
        cols = ["station", "station_kind", "sojourn_mean_us.mean"]
        rows = hit[cols].itertuples(index=False)
        return [(str(n), str(k), float(v)) for n, k, v in rows if math.isfinite(float(v))]
    p = res.paths
    hit = p[(p["config"] == config) & (p["flow"] == flow)]["path"]
    if hit.empty or not isinstance(hit.iloc[0], str):
        return []
    st = res.stations[res.stations["config"] == config].set_index("station")
    out = []
    for name in hit.iloc[0].split(" > "):
        if name in st.index:
            v = float(st.at[name, "sojourn_mean_us.mean"])
            if math.isfinite(v):
                out.append((name, str(st.at[name, "station_kind"]), v))
    return out


def _value(param: str, value) -> str:
    return str(value) if param == "placement" else f"{param.rsplit('.', 1)[-1]}={value}"
