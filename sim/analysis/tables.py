"""Per-packet and per-hop tables (pandas) for export and plotting."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from sim.engine.run import RunResult
from sim.errors import UserError


def packet_table(res: RunResult) -> pd.DataFrame:
    """One row per packet: flow, route, size, send/done times, status and reason."""
    p = res.packets
    route = p["route"].astype(np.int64)
    flow_names = np.array([st.flow.name for st in res.flows] or [""], dtype=object)
    route_flow = np.asarray(res.route_flow or [0], dtype=np.int64)
    route_names = np.array(res.route_names or [""], dtype=object)
    route_reply = np.asarray(res.route_is_reply or [False], dtype=bool)
    reasons = np.array(res.reasons, dtype=object)
    done = p["done_s"]
    finished = done <= res.duration_s
    status = np.where(
        ~finished, "in-flight", np.where(p["reason"] == 0, "delivered", "dropped")
    ).astype(object)
    latency_us = np.where(status == "delivered", (done - p["send_s"]) * 1e6, np.nan)
    return pd.DataFrame(
        {
            "packet": np.arange(route.size, dtype=np.int64),
            "flow": flow_names[route_flow[route]] if route.size else [],
            "route": route_names[route] if route.size else [],
            "reply": route_reply[route] if route.size else [],
            "size_bytes": p["size_bytes"].astype(np.int64),
            "send_s": p["send_s"],
            "done_s": np.where(finished, done, np.nan),
            "status": status,
            "reason": np.where(finished, reasons[p["reason"]], "") if route.size else [],
            "latency_us": latency_us,
        }
    )


def hop_table(res: RunResult) -> pd.DataFrame | None:
    """One row per packet per station crossed (only if hops were recorded)."""
    if res.hops is None:
        return None
    names = np.array([s.name for s in res.stations] or [""], dtype=object)
    h = res.hops
    return pd.DataFrame(
        {
            "packet": h["packet"],
            "station": names[h["station"].astype(np.int64)] if h["station"].size else [],
            "arrive_s": h["arrive_s"],
            "start_s": h["start_s"],
            "depart_s": h["depart_s"],
        }
    )


def write_table(df: pd.DataFrame, path: str | Path) -> None:
    """Write ``df`` as CSV or Parquet, chosen by the file extension."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix == ".csv":
        df.to_csv(p, index=False)
    elif suffix in (".parquet", ".pq"):  # sim.cli.common.TABLE_SUFFIXES checks these early
        df.to_parquet(p, index=False)
    else:
        raise UserError(
            f"cannot tell the format of {str(p)!r} from its extension",
            field="--packets-out",
            fix="end the file name in .csv or .parquet",
        )
