"""Congestion window and goodput over time of the tcp flows that asked for it.

A ``tcp`` flow (or a ``request-response`` flow over TCP) with ``record_cwnd =
true`` keeps its senders' window after every change and the payload its receivers
got in order per ``series_interval_us`` (:class:`sim.engine.tcp.TcpStats`). This
module turns them into rows, one per (flow, connection, interval): the
``tcp_series`` results table and the ``tcp-series`` figure read them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: Columns of a series row after the run's identity and parameter columns.
SERIES_COLUMNS = ("flow", "stream", "time_s", "cwnd_bytes", "goodput_gbps")


def series_rows(res) -> list[dict[str, Any]]:
    """Rows of every recorded tcp series of a run, in flow then connection order.

    Parameters
    ----------
    res : RunResult
        The run (:func:`sim.engine.run.simulate`).

    Returns
    -------
    list of dict
        ``flow`` (name), ``stream`` (connection index), ``time_s`` (end of the
        interval, s; the last one ends at the run's end), ``cwnd_bytes`` (the
        sender's congestion window at ``time_s``, bytes) and ``goodput_gbps``
        (payload delivered in order during the interval, Gbit/s). Empty when no
        flow recorded a series.
    """
    rows: list[dict[str, Any]] = []
    for st in res.flows:
        tcp = st.tcp
        if tcp is None or tcp.series_goodput_bytes is None:
            continue
        ends = _interval_ends_s(tcp.series_bin_s, tcp.series_goodput_bytes.shape[1], res)
        widths = np.diff(np.concatenate([[0.0], ends]))
        at = np.asarray(tcp.cwnd_at_s)
        cwnd = np.asarray(tcp.cwnd_bytes, dtype=float)
        which = np.asarray(tcp.cwnd_stream, dtype=int)
        for i, got in enumerate(tcp.series_goodput_bytes):
            mine = which == i
            w = _value_at(at[mine], cwnd[mine], ends, tcp.init_cwnd_bytes)
            gbps = got * 8.0 / widths / 1e9
            rows.extend(
                {
                    "flow": st.flow.name,
                    "stream": i,
                    "time_s": float(e),
                    "cwnd_bytes": float(c),
                    "goodput_gbps": float(g),
                }
                for e, c, g in zip(ends, w, gbps, strict=True)
            )
    return rows


def _interval_ends_s(bin_s: float, n: int, res) -> np.ndarray:
    """End of each of ``n`` intervals of ``bin_s`` seconds, the last at the run's end."""
    return np.minimum(np.arange(1, n + 1) * bin_s, res.duration_s)


def _value_at(at_s: np.ndarray, value: np.ndarray, t_s: np.ndarray, initial: float) -> np.ndarray:
    """Return the last ``value`` recorded at or before each ``t_s`` (``initial`` before any)."""
    i = np.searchsorted(at_s, t_s, side="right") - 1
    out = np.where(i >= 0, value[np.maximum(i, 0)] if value.size else initial, initial)
    return out.astype(float)
