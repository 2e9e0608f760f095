"""Congestion control of the ``tcp`` flow kind: NewReno and CUBIC window growth.

A controller owns the congestion window ``cwnd`` and the slow-start threshold
``ssthresh`` of one connection, both in bytes. The sender (:mod:`sim.engine.tcp`)
runs loss detection and fast recovery (RFC 6582) and tells the controller:

* :meth:`NewReno.on_ack` -- new data acknowledged outside fast recovery;
* :meth:`NewReno.on_loss` -- a congestion event found by three duplicate ACKs
  (sets ``ssthresh``; the sender then inflates ``cwnd`` for the recovery);
* :meth:`NewReno.on_timeout` -- a retransmission timeout (``cwnd`` = one segment).

Sources
-------
* Slow start and congestion avoidance: RFC 5681 section 3.1. Slow start grows
  ``cwnd`` by the bytes acknowledged, at most 2 SMSS per ACK (RFC 3465, Appropriate
  Byte Counting with L = 2): with delayed ACKs (one ACK per two segments) the
  window doubles every round trip, as Linux's ``tcp_slow_start`` does.
  Congestion avoidance adds one SMSS per window of bytes acknowledged (RFC 5681
  equation 3, byte counting).
* Loss: ``ssthresh = max(FlightSize / 2, 2 SMSS)`` (RFC 5681 equation 4).
* CUBIC: RFC 9438: ``W_cubic(t) = C (t - K)^3 + W_max`` with ``C = 0.4``,
  ``beta_cubic = 0.7``, ``K = cbrt((W_max - cwnd_epoch) / C)`` (section 4.2), the
  target ``W_cubic(t + RTT)`` clamped to ``[cwnd, 1.5 cwnd]`` (4.4), the Reno-friendly
  estimate ``W_est`` growing by ``alpha_cubic = 3 (1 - beta) / (1 + beta)`` segments
  per window (1 once ``W_est >= W_max``; 4.3), fast convergence (4.7), and on a
  timeout Reno's reaction with ``ssthresh`` from ``beta_cubic`` (4.8). Windows in
  the CUBIC formulas are in segments, times in seconds.
"""

from __future__ import annotations

import math

#: ``ssthresh`` before the first loss: unbounded (Linux starts at "infinite").
SSTHRESH_INIT = 1 << 60
#: RFC 3465: most bytes (in SMSS) slow start credits for one ACK.
ABC_LIMIT_SEGMENTS = 2
#: RFC 9438 constants.
CUBIC_C = 0.4
CUBIC_BETA = 0.7


class NewReno:
    """Reno window growth and reduction (RFC 5681), the NewReno sender's controller.

    Parameters
    ----------
    mss_bytes : int
        Sender maximum segment size (SMSS), bytes.
    init_cwnd_bytes : int
        Initial window, bytes (RFC 6928: 10 segments).
    """

    name = "newreno"

    def __init__(self, mss_bytes: int, init_cwnd_bytes: int) -> None:
        self.mss = mss_bytes
        self.cwnd = float(init_cwnd_bytes)
        self.ssthresh = float(SSTHRESH_INIT)
        self._ca_acked = 0.0  # bytes acknowledged towards the next +1 SMSS in avoidance

    def in_slow_start(self) -> bool:
        """Whether ``cwnd < ssthresh`` (RFC 5681 section 3.1)."""
        return self.cwnd < self.ssthresh

    def on_ack(self, acked_bytes: int, now_s: float, srtt_s: float) -> None:
        """Grow the window for ``acked_bytes`` newly acknowledged (outside recovery).

        Parameters
        ----------
        acked_bytes : int
            Bytes this ACK acknowledged for the first time.
        now_s : float
            Time of the ACK, seconds.
        srtt_s : float
            Smoothed round-trip time, seconds (used by CUBIC).
        """
        if self.in_slow_start():
            self.cwnd += min(acked_bytes, ABC_LIMIT_SEGMENTS * self.mss)
            return
        self._avoid(acked_bytes, now_s, srtt_s)

    def _avoid(self, acked_bytes: int, now_s: float, srtt_s: float) -> None:
        """Congestion avoidance: +1 SMSS per cwnd bytes acknowledged."""
        self._ca_acked += acked_bytes
        if self._ca_acked >= self.cwnd:
            self._ca_acked -= self.cwnd
            self.cwnd += self.mss

    def on_loss(self, flight_bytes: int, now_s: float) -> None:
        """Set ``ssthresh`` for a loss found by duplicate ACKs (RFC 5681 eq. 4)."""
        self.ssthresh = max(flight_bytes / 2.0, 2.0 * self.mss)
        self._ca_acked = 0.0

    def on_timeout(self, flight_bytes: int, now_s: float) -> None:
        """React to a retransmission timeout: ``ssthresh`` as for a loss, cwnd 1 SMSS."""
        self.on_loss(flight_bytes, now_s)
        self.cwnd = float(self.mss)


class Cubic(NewReno):
    """CUBIC (RFC 9438): Reno's slow start and recovery, a cubic avoidance phase.

    Parameters
    ----------
    mss_bytes : int
        Sender maximum segment size, bytes.
    init_cwnd_bytes : int
        Initial window, bytes.
    """

    name = "cubic"

    def __init__(self, mss_bytes: int, init_cwnd_bytes: int) -> None:
        super().__init__(mss_bytes, init_cwnd_bytes)
        self.w_max = 0.0  # segments, before the last congestion event
        self.k_s = 0.0
        self.epoch_s: float | None = None  # start of the current avoidance stage
        self.w_est = 0.0  # segments, the Reno-friendly estimate

    def _start_epoch(self, now_s: float) -> None:
        """Begin a congestion-avoidance stage (RFC 9438 section 4.2)."""
        cwnd_seg = self.cwnd / self.mss
        self.epoch_s = now_s
        self.w_est = cwnd_seg
        if self.w_max <= cwnd_seg:
            self.w_max = cwnd_seg
            self.k_s = 0.0
        else:
            self.k_s = math.cbrt((self.w_max - cwnd_seg) / CUBIC_C)

    def w_cubic(self, t_s: float) -> float:
        """``W_cubic(t)`` of the current stage, segments (RFC 9438 eq. 1)."""
        return CUBIC_C * (t_s - self.k_s) ** 3 + self.w_max

    def _avoid(self, acked_bytes: int, now_s: float, srtt_s: float) -> None:
        if self.epoch_s is None:
            self._start_epoch(now_s)
        cwnd_seg = self.cwnd / self.mss
        acked_seg = acked_bytes / self.mss
        t = now_s - self.epoch_s
        alpha = 1.0 if self.w_est >= self.w_max else 3.0 * (1 - CUBIC_BETA) / (1 + CUBIC_BETA)
        self.w_est += alpha * acked_seg / cwnd_seg
        if self.w_cubic(t) < self.w_est:  # Reno-friendly region (section 4.3)
            new_seg = max(cwnd_seg, self.w_est)
        else:  # concave or convex region (sections 4.4, 4.5)
            target = min(max(self.w_cubic(t + srtt_s), cwnd_seg), 1.5 * cwnd_seg)
            new_seg = cwnd_seg + (target - cwnd_seg) / cwnd_seg * acked_seg
        self.cwnd = new_seg * self.mss

    def on_loss(self, flight_bytes: int, now_s: float) -> None:
        """Multiplicative decrease by ``beta_cubic``, fast convergence (4.6, 4.7)."""
        cwnd_seg = self.cwnd / self.mss
        if cwnd_seg < self.w_max:
            self.w_max = cwnd_seg * (1 + CUBIC_BETA) / 2
        else:
            self.w_max = cwnd_seg
        self.ssthresh = max(self.cwnd * CUBIC_BETA, 2.0 * self.mss)
        self.epoch_s = None
        self._ca_acked = 0.0

    def on_timeout(self, flight_bytes: int, now_s: float) -> None:
        """Reno's timeout reaction with ``ssthresh`` from ``beta_cubic`` (4.8)."""
        self.on_loss(flight_bytes, now_s)
        self.cwnd = float(self.mss)


def controller(cc: str, mss_bytes: int, init_cwnd_bytes: int) -> NewReno:
    """Build the congestion controller called ``cc`` (``"cubic"`` or ``"newreno"``)."""
    cls = Cubic if cc == "cubic" else NewReno
    return cls(mss_bytes, init_cwnd_bytes)
