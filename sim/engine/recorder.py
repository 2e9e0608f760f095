"""Per-packet and per-station records, kept in compact typed arrays.

The hot path appends to :mod:`array` arrays (8 B per float, 1-4 B per int, no
Python object per packet); :meth:`Recorder.to_numpy` shows them as numpy arrays
after the run, without copying. About 29 B per packet without per-hop records.
Route, station and reason ids are 32-bit: a trace may name more than 65,535
distinct routes.
"""

from __future__ import annotations

import math
from array import array
from dataclasses import dataclass, field

import numpy as np

ID_DTYPE = np.uint32
"""Type of route, station and drop-reason ids in results (both engines)."""

NAN = math.nan


@dataclass
class Recorder:
    """Growing per-packet columns.

    Attributes
    ----------
    route : array('I')
        Route index of each packet (a route is a resolved path of one flow).
    size : array('I')
        IP packet size, bytes.
    hop : array('B')
        Index of the station the packet is at or heading to.
    send_s : array('d')
        Send time, seconds.
    done_s : array('d')
        Delivery or drop time, seconds (NaN while in flight).
    reason : array('I')
        0 if delivered (or in flight); else index into :attr:`reasons`.
    reasons : list of str
        Drop reasons; index 0 is the empty reason.
    """

    route: array = field(default_factory=lambda: array("I"))
    size: array = field(default_factory=lambda: array("I"))
    hop: array = field(default_factory=lambda: array("B"))
    send_s: array = field(default_factory=lambda: array("d"))
    done_s: array = field(default_factory=lambda: array("d"))
    reason: array = field(default_factory=lambda: array("I"))
    reasons: list[str] = field(default_factory=lambda: [""])
    _reason_ids: dict[str, int] = field(default_factory=lambda: {"": 0})
    # optional per-hop records (record_hops=True)
    hop_pkt: array | None = None
    hop_station: array | None = None
    hop_arrive_s: array | None = None
    hop_start_s: array | None = None
    hop_depart_s: array | None = None

    def enable_hops(self) -> None:
        """Start keeping one row per packet per station."""
        self.hop_pkt = array("q")
        self.hop_station = array("I")
        self.hop_arrive_s = array("d")
        self.hop_start_s = array("d")
        self.hop_depart_s = array("d")

    def reason_id(self, text: str) -> int:
        """Index of a drop reason, added if new."""
        rid = self._reason_ids.get(text)
        if rid is None:
            rid = self._reason_ids[text] = len(self.reasons)
            self.reasons.append(text)
        return rid

    def new_packet(self, route: int, size_bytes: int, send_s: float) -> int:
        """Append a packet and return its id."""
        self.route.append(route)
        self.size.append(size_bytes)
        self.hop.append(0)
        self.send_s.append(send_s)
        self.done_s.append(NAN)
        self.reason.append(0)
        return len(self.send_s) - 1

    def nbytes(self) -> int:
        """Bytes held by the per-packet columns."""
        cols = [self.route, self.size, self.hop, self.send_s, self.done_s, self.reason]
        return sum(c.itemsize * len(c) for c in cols)

    def to_numpy(self) -> dict[str, np.ndarray]:
        """Per-packet columns as numpy arrays over the recorder's own memory.

        No copies (a copy of every column was a quarter of a run's peak memory):
        once exported, the columns cannot grow any more (``array`` refuses to
        resize a buffer in use), so call this after the run.
        """
        return {
            "route": np.frombuffer(self.route, dtype=ID_DTYPE),
            "size_bytes": np.frombuffer(self.size, dtype=np.uint32),
            "send_s": np.frombuffer(self.send_s, dtype=np.float64),
            "done_s": np.frombuffer(self.done_s, dtype=np.float64),
            "reason": np.frombuffer(self.reason, dtype=ID_DTYPE),
        }

    def hops_to_numpy(self) -> dict[str, np.ndarray] | None:
        """Per-hop rows as numpy arrays over the recorder's memory, or None if not recorded."""
        if self.hop_pkt is None:
            return None
        return {
            "packet": np.frombuffer(self.hop_pkt, dtype=np.int64),
            "station": np.frombuffer(self.hop_station, dtype=ID_DTYPE),
            "arrive_s": np.frombuffer(self.hop_arrive_s, dtype=np.float64),
            "start_s": np.frombuffer(self.hop_start_s, dtype=np.float64),
            "depart_s": np.frombuffer(self.hop_depart_s, dtype=np.float64),
        }
