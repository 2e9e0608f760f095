"""The ``tcp`` flow kind: TCP senders and receivers over the simulated path.

Each of a flow's ``streams`` connections is a :class:`Sender` at ``src`` and a
:class:`Receiver` at ``dst``. Data segments travel the flow's route and ACKs the
reverse route (:func:`sim.control.resolve.resolve_reply`), through the same
stations as every other packet: one packet per segment (per super-segment with
``tso``), one SimPy event per packet-hop. Timers are the only other events: at
most one pending retransmission timer per connection and one delayed-ACK timer
per receiver (:class:`Timer`).

What is modelled (sources)
--------------------------
* Sequence numbers in bytes, cumulative ACKs, the receiver's out-of-order buffer
  and its advertised window (``rcv_buf_bytes`` less the out-of-order bytes it holds;
  the application reads in-order data at once). No handshake, no SACK, no timestamps.
* Slow start, congestion avoidance, loss reactions: :mod:`sim.engine.tcp_cc`
  (RFC 5681, RFC 3465, RFC 9438). The window grows only while it limits sending,
  as Linux's ``tcp_is_cwnd_limited`` decides (in slow start: ``cwnd`` under twice
  the largest flight of the current window; in avoidance: the window was filled),
  so a sender held back by the receive window or the application (request/response)
  keeps its window (RFC 7661's concern).
* Fast retransmit on the third duplicate ACK and NewReno fast recovery
  (RFC 6582 section 3.2: ``recover``, partial ACKs retransmit the next hole and
  deflate the window, a full ACK sets ``cwnd = min(ssthresh, FlightSize + SMSS)``;
  the "impatient" timer: only the first partial ACK restarts it).
* Retransmission timeout (RFC 6298): first RTO 1 s; from the first sample
  ``SRTT = R``, ``RTTVAR = R / 2``, then ``RTTVAR = 3/4 RTTVAR + 1/4 |SRTT - R|``,
  ``SRTT = 7/8 SRTT + 1/8 R``; ``RTO = max(200 ms, SRTT + 4 RTTVAR)`` (Linux's
  ``TCP_RTO_MIN`` instead of RFC 6298's 1 s; clock granularity taken as 0);
  doubled at each timeout up to 120 s (Linux ``TCP_RTO_MAX``); Karn's rule: no
  sample from an ACK that covers only data sent before the last retransmission.
  Every ACK that acknowledges new data gives a sample (as Linux does with
  timestamps). After a timeout the sender goes back to the first unacknowledged
  byte (``snd_nxt = snd_una``) and slow-starts from one segment.
* Delayed ACKs (RFC 5681 section 4.2, Linux): an ACK once two full segments are
  unacknowledged, or ``delack_us`` (40 ms) after the first; at once for an
  out-of-order segment, a duplicate, a segment that fills a hole, and the last
  byte of a ``bytes`` transfer (standing for the FIN, which is acknowledged at once).
* Loss is learned only from duplicate ACKs and timeouts: a dropped segment just
  never arrives (the drop hook only forgets it).
* ``tso``: the sender hands the path super-segments of up to 64 KB (whole
  segments, at most :data:`~sim.spec.workload.TSO_MAX_BYTES` of IP packet), each
  one packet at every station: per-packet costs are paid once per super-segment,
  on the stations before segmentation and after GRO alike. Simplification: the
  NIC's per-frame framing is paid once per super-segment (about 2.5 % less wire
  time cross-node) and a super-segment is stored and forwarded whole at each link.

Time: a station hands a delivered packet to its route's end when the packet
*arrives* at the last station, with its delivery time ``t``; senders and receivers
act at that ``t`` (sending at ``t``), as the other closed-loop flows do. Timers run
on the SimPy clock.
"""

from __future__ import annotations

import math
from bisect import insort
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from sim.engine.network import US, Network
from sim.engine.tcp_cc import NewReno, controller
from sim.spec.workload import TCP_IP_HEADER_BYTES, TSO_MAX_BYTES, Flow

#: RFC 6298 (2.1): RTO before the first RTT sample, seconds.
RTO_INITIAL_S = 1.0
#: Linux ``TCP_RTO_MIN`` (200 ms), seconds.
RTO_MIN_S = 0.2
#: Linux ``TCP_RTO_MAX`` (120 s), seconds.
RTO_MAX_S = 120.0
#: Duplicate ACKs that trigger fast retransmit (RFC 5681 section 3.2).
DUPACK_THRESHOLD = 3
#: Size of an ACK (IP + TCP headers, no options), bytes.
ACK_BYTES = TCP_IP_HEADER_BYTES
#: Tolerance of a timer's deadline against the clock, seconds.
_EPS_S = 1e-12


def series_intervals(end_s: float, bin_s: float) -> int:
    """Intervals of ``bin_s`` seconds that cover a run of ``end_s`` seconds (at least 1)."""
    return max(1, math.ceil(end_s / bin_s * (1 - 1e-12)))


@dataclass
class TcpStats:
    """What a tcp flow's connections did (all streams), for the analysis.

    Attributes
    ----------
    goodput_bytes : int
        Payload bytes delivered in order to the receivers in the measurement window.
    retransmit_s : list of float
        Send time of every retransmitted segment, seconds.
    timeout_s : list of float
        Time of every retransmission timeout, seconds.
    srtt_at_s, srtt_s : list of float
        Time of every RTT sample and the sender's SRTT after it, seconds.
    cwnd_at_s, cwnd_bytes, cwnd_stream : list
        Congestion window after every change (with ``record_cwnd``): time (s),
        window (bytes) and connection index.
    completed_s : list of float
        Time each connection's receiver got its last byte (flows with ``bytes``).
    series_bin_s : float
        Interval of the goodput series, seconds (NaN without ``record_cwnd``).
    series_goodput_bytes : ndarray or None
        Payload delivered in order per (connection, interval ``[k, k+1) x
        series_bin_s``), bytes; None without ``record_cwnd``.
    init_cwnd_bytes : float
        Initial congestion window, bytes (the series' value before any change).
    """

    goodput_bytes: int = 0
    retransmit_s: list[float] = field(default_factory=list)
    timeout_s: list[float] = field(default_factory=list)
    srtt_at_s: list[float] = field(default_factory=list)
    srtt_s: list[float] = field(default_factory=list)
    cwnd_at_s: list[float] = field(default_factory=list)
    cwnd_bytes: list[float] = field(default_factory=list)
    cwnd_stream: list[int] = field(default_factory=list)
    completed_s: list[float] = field(default_factory=list)
    series_bin_s: float = math.nan
    series_goodput_bytes: np.ndarray | None = None
    init_cwnd_bytes: float = 0.0

    def start_series(self, streams: int, bin_s: float, end_s: float, init_cwnd_bytes: float):
        """Keep goodput per ``bin_s`` seconds for ``streams`` connections until ``end_s``."""
        self.series_bin_s = bin_s
        self.series_goodput_bytes = np.zeros((streams, series_intervals(end_s, bin_s)))
        self.init_cwnd_bytes = init_cwnd_bytes

    def add_goodput(self, stream: int, t: float, nbytes: int) -> None:
        """Count ``nbytes`` delivered in order to connection ``stream`` at ``t`` (series)."""
        g = self.series_goodput_bytes
        if g is None:
            return
        b = self.series_bin_s
        k = int(t / b)
        k += (k + 1) * b <= t  # interval k is [k b, (k + 1) b), whatever the rounding of t / b
        k -= k * b > t
        if k < g.shape[1]:  # a delivery at the run's very end belongs to no interval
            g[stream, k] += nbytes


class Timer:
    """A one-shot timer on the run's clock, re-armed lazily.

    Moving the deadline later schedules nothing: the pending event, when it
    fires, re-arms for the new deadline. So a connection restarting its RTO on
    every ACK keeps one pending SimPy event, not one per ACK.

    Parameters
    ----------
    net : Network
        The run's network (its SimPy environment).
    callback : callable
        ``callback(now_s)`` when the deadline is reached.
    """

    __slots__ = ("env", "callback", "deadline_s", "_pending_s")

    def __init__(self, net: Network, callback) -> None:
        self.env = net.env
        self.callback = callback
        self.deadline_s = math.inf
        self._pending_s = math.inf

    def set(self, at_s: float) -> None:
        """Fire at ``at_s`` (replacing any earlier deadline)."""
        self.deadline_s = at_s
        if at_s < self._pending_s:
            self._schedule(at_s)

    def cancel(self) -> None:
        """Stop the timer."""
        self.deadline_s = math.inf

    def armed(self) -> bool:
        """Whether a deadline is set."""
        return self.deadline_s < math.inf

    def _schedule(self, at_s: float) -> None:
        self._pending_s = at_s
        ev = self.env.timeout(max(0.0, at_s - self.env.now))
        ev.callbacks.append(lambda _ev, at_s=at_s: self._fire(at_s))

    def _fire(self, at_s: float) -> None:
        if at_s != self._pending_s:
            return  # superseded by an earlier deadline
        self._pending_s = math.inf
        now = self.env.now
        if self.deadline_s > now + _EPS_S:
            if self.deadline_s < math.inf:
                self._schedule(self.deadline_s)
            return
        self.deadline_s = math.inf
        self.callback(now)


class RttEstimator:
    """SRTT, RTTVAR and RTO of one connection (RFC 6298, Linux's 200 ms minimum)."""

    __slots__ = ("srtt_s", "rttvar_s", "base_rto_s", "backoff")

    def __init__(self) -> None:
        self.srtt_s: float | None = None
        self.rttvar_s = 0.0
        self.base_rto_s = RTO_INITIAL_S
        self.backoff = 0

    def sample(self, r_s: float) -> None:
        """Take a round-trip sample ``r_s`` (seconds); clears the backoff (RFC 6298 5.7)."""
        if self.srtt_s is None:
            self.srtt_s = r_s
            self.rttvar_s = r_s / 2.0
        else:
            self.rttvar_s = 0.75 * self.rttvar_s + 0.25 * abs(self.srtt_s - r_s)
            self.srtt_s = 0.875 * self.srtt_s + 0.125 * r_s
        self.base_rto_s = max(RTO_MIN_S, self.srtt_s + 4.0 * self.rttvar_s)
        self.backoff = 0

    def rto_s(self) -> float:
        """Return the RTO with the exponential backoff, seconds (at most 120 s)."""
        return min(self.base_rto_s * (1 << self.backoff), RTO_MAX_S)


class Sender:
    """One connection's sender: windows, retransmissions, RTO (see the module doc).

    Parameters
    ----------
    flow : TcpFlow
        The flow it belongs to (routes, packet bookkeeping, statistics).
    index : int
        Connection index within the flow.
    """

    def __init__(self, flow: TcpFlow, index: int) -> None:
        f = flow.spec
        self.flow, self.index = flow, index
        self.mss = f.mss_bytes
        self.unit = (
            (TSO_MAX_BYTES - TCP_IP_HEADER_BYTES) // self.mss * self.mss if f.tso else self.mss
        )
        self.total = f.bytes if f.bytes is not None else math.inf
        self.cc: NewReno = controller(f.cc, self.mss, f.init_cwnd_segments * self.mss)
        self.rtt = RttEstimator()
        self.timer = Timer(flow.net, self._timeout)
        self.snd_una = self.snd_nxt = self.snd_max = 0
        self.rwnd = f.rcv_buf_bytes  # what the receiver would advertise (no handshake)
        self.dupacks = 0
        self.in_recovery = False
        self.recover = -1  # RFC 6582 "recover"
        self.partial_seen = False  # a partial ACK seen in this recovery
        self.karn_mark = -1  # snd_max at the last retransmission
        self.record = f.record_cwnd  # keep the window after every change
        self.cwnd_limited = False  # the current window was filled (Linux is_cwnd_limited)
        self.max_flight = 0  # largest flight of the current window, bytes
        self.usage_seq = 0  # snd_nxt when that window began (Linux cwnd_usage_seq)
        self.timing: deque[tuple[int, float]] = deque()  # (end seq, send time), new data

    # -- sending ----------------------------------------------------------------------
    def send_more(self, t: float) -> None:
        """Send what the congestion and receive windows allow at ``t``."""
        right = self.snd_una + min(self.cc.cwnd, self.rwnd)
        end = self.total if t < self.flow.stop_s else self.snd_max
        sent = False
        while self.snd_nxt < end:
            remaining = end - self.snd_nxt
            length = min(self.unit, remaining, right - self.snd_nxt)
            if length < min(self.mss, remaining):
                break  # only whole segments, except the last bytes of the stream
            if length < remaining:
                length = int(length) // self.mss * self.mss
            length = int(length)
            self._transmit(self.snd_nxt, self.snd_nxt + length, t)
            self.snd_nxt += length
            self.snd_max = max(self.snd_max, self.snd_nxt)
            sent = True
        self._cwnd_validate(sent)

    def _cwnd_validate(self, sent: bool) -> None:
        """Track how fully the window is used (Linux ``tcp_cwnd_validate``).

        Cwnd-limited: what is in flight leaves less than a segment of ``cwnd``.
        Per window of data (until ``snd_una`` passes ``usage_seq``) the sender
        keeps whether it was cwnd-limited and its largest flight.
        """
        flight = self.snd_nxt - self.snd_una
        limited = self.cc.cwnd - flight < self.mss
        if not (sent or limited):
            return
        if (
            self.snd_una >= self.usage_seq
            or limited
            or (not self.cwnd_limited and flight > self.max_flight)
        ):
            self.cwnd_limited = limited
            self.max_flight = flight
            self.usage_seq = self.snd_nxt

    def is_cwnd_limited(self) -> bool:
        """Whether the window may grow (Linux ``tcp_is_cwnd_limited``, RFC 7661's aim).

        In slow start while ``cwnd`` is under twice the largest flight of the
        current window; in congestion avoidance if the window was filled in it.
        A sender held back by the receive window or the application does not grow
        ``cwnd`` without bound.
        """
        if self.cc.in_slow_start():
            return self.cc.cwnd < 2 * self.max_flight
        return self.cwnd_limited

    def _transmit(self, seq: int, end: int, t: float) -> None:
        """Put bytes ``[seq, end)`` on the path at ``t`` (a retransmission if sent before)."""
        if seq < self.snd_max:
            self.karn_mark = self.snd_max
            self.flow.stats.retransmit_s.append(t)
        else:
            self.timing.append((end, t))
        self.flow.send_segment(self, seq, end, t)
        if not self.timer.armed():  # RFC 6298 (5.1)
            self.timer.set(t + self.rtt.rto_s())

    def _retransmit_first(self, t: float) -> None:
        """Retransmit the segment at ``snd_una``."""
        end = min(self.snd_una + self.unit, self.snd_max)
        self._transmit(self.snd_una, end, t)

    # -- acknowledgements ---------------------------------------------------------------
    def on_ack(self, ack: int, rwnd: int, t: float, carries_data: bool = False) -> None:
        """Process an ACK of everything below ``ack`` advertising ``rwnd`` bytes, at ``t``.

        ``carries_data``: the ACK rides on a data segment of the other direction,
        which is never a duplicate ACK (RFC 5681 section 2).
        """
        self.rwnd = rwnd
        if ack > self.snd_una:
            self._new_ack(ack, t)
        elif ack == self.snd_una and self.snd_una < self.snd_max and not carries_data:
            self._dup_ack(t)
        self._record_cwnd(t)
        self.send_more(t)

    def _new_ack(self, ack: int, t: float) -> None:
        acked = ack - self.snd_una
        self._rtt_sample(ack, t)
        self.snd_una = ack
        self.snd_nxt = max(self.snd_nxt, ack)
        restart = True
        if self.in_recovery:
            restart = self._recovery_ack(ack, acked, t)
        else:
            if self.is_cwnd_limited():
                self.cc.on_ack(acked, t, self.rtt.srtt_s or 0.0)
        self.dupacks = 0
        if self.snd_una >= self.snd_max:
            self.timer.cancel()  # RFC 6298 (5.2)
        elif restart:
            self.timer.set(t + self.rtt.rto_s())  # (5.3)

    def _recovery_ack(self, ack: int, acked: int, t: float) -> bool:
        """Handle a full or partial ACK in fast recovery (RFC 6582 3.2 steps 3, 5).

        Returns whether the retransmission timer is to be restarted.
        """
        flight = self.snd_max - self.snd_una
        if ack >= self.recover:  # full ACK: leave recovery
            self.in_recovery = False
            self.cc.cwnd = min(self.cc.ssthresh, max(flight, self.mss) + self.mss)
            return True
        first_partial = not self.partial_seen
        self.partial_seen = True
        self._retransmit_first(t)
        self.cc.cwnd = max(self.cc.cwnd - acked + (self.mss if acked >= self.mss else 0), self.mss)
        return first_partial

    def _dup_ack(self, t: float) -> None:
        self.dupacks += 1
        if self.in_recovery:
            self.cc.cwnd += self.mss  # RFC 6582 step 4: inflate
        elif self.dupacks == DUPACK_THRESHOLD and self.snd_una > self.recover:
            self._fast_retransmit(t)

    def _fast_retransmit(self, t: float) -> None:
        """Enter fast recovery (RFC 6582 3.2 step 2)."""
        self.cc.on_loss(self.snd_max - self.snd_una, t)
        self.recover = self.snd_max
        self.in_recovery = True
        self.partial_seen = False
        self._retransmit_first(t)
        self.cc.cwnd = self.cc.ssthresh + DUPACK_THRESHOLD * self.mss

    def _rtt_sample(self, ack: int, t: float) -> None:
        """Sample the RTT from the newest segment ``ack`` covers (Karn's rule)."""
        last = None
        timing = self.timing
        while timing and timing[0][0] <= ack:
            last = timing.popleft()
        if last is None or last[0] <= self.karn_mark:
            return
        self.rtt.sample(t - last[1])
        st = self.flow.stats
        st.srtt_at_s.append(t)
        st.srtt_s.append(self.rtt.srtt_s)

    def _timeout(self, now: float) -> None:
        """Handle an expired retransmission timer (RFC 6298 5.4-5.6, RFC 5681 eq. 4)."""
        if self.snd_una >= self.snd_max:
            return
        self.flow.stats.timeout_s.append(now)
        self.cc.on_timeout(self.snd_max - self.snd_una, now)
        self.recover = self.snd_max  # RFC 6582 section 4
        self.in_recovery = False
        self.dupacks = 0
        self.rtt.backoff += 1
        self.snd_nxt = self.snd_una
        self.timer.set(now + self.rtt.rto_s())
        self._record_cwnd(now)
        self.send_more(now)

    def _record_cwnd(self, t: float) -> None:
        if self.record:
            st = self.flow.stats
            st.cwnd_at_s.append(t)
            st.cwnd_bytes.append(self.cc.cwnd)
            st.cwnd_stream.append(self.index)


class Receiver:
    """One connection's receiver: cumulative ACKs, out-of-order buffer, delayed ACKs.

    Parameters
    ----------
    flow : TcpFlow
        The flow it belongs to.
    index : int
        Connection index within the flow.
    """

    def __init__(self, flow: TcpFlow, index: int) -> None:
        f = flow.spec
        self.flow, self.index = flow, index
        self.mss = f.mss_bytes
        self.buf = f.rcv_buf_bytes
        self.total = f.bytes if f.bytes is not None else math.inf
        self.delayed = f.delayed_ack
        self.delack_s = f.delack_us * US
        self.rcv_nxt = 0
        self.acked = 0  # rcv_nxt in the last ACK sent
        self.ooo: list[tuple[int, int]] = []  # out-of-order [start, end), sorted
        self.ooo_bytes = 0
        self.timer = Timer(flow.net, self._delack_fire)

    def window(self) -> int:
        """Advertised receive window, bytes."""
        return max(self.buf - self.ooo_bytes, 0)

    def on_segment(self, seq: int, end: int, t: float) -> None:
        """Segment ``[seq, end)`` arrives at ``t``."""
        if end <= self.rcv_nxt:
            self.ack_now(t)  # a duplicate: ACK at once (RFC 5681 4.2)
        elif seq <= self.rcv_nxt:
            filled_hole = bool(self.ooo)
            self._advance(end, t)
            if filled_hole or not self.delayed or self.rcv_nxt - self.acked >= 2 * self.mss:
                self.ack_now(t)
            elif self.rcv_nxt >= self.total:
                self.ack_now(t)
            elif not self.timer.armed():
                self.timer.set(t + self.delack_s)
        else:
            if end - self.rcv_nxt <= self.buf:
                insort(self.ooo, (seq, end))
                self.ooo_bytes += end - seq
            self.ack_now(t)  # out of order: a duplicate ACK at once

    def _advance(self, end: int, t: float) -> None:
        """Move ``rcv_nxt`` to ``end`` and past the buffered data it now joins."""
        new = end
        while self.ooo and self.ooo[0][0] <= new:
            s, e = self.ooo.pop(0)
            self.ooo_bytes -= e - s
            new = max(new, e)
        self.flow.delivered(self, new - self.rcv_nxt, t)
        self.rcv_nxt = new

    def ack_now(self, t: float) -> None:
        """Send a cumulative ACK for ``rcv_nxt`` at ``t``."""
        self.acked = self.rcv_nxt
        self.timer.cancel()
        self.flow.send_ack(self, self.rcv_nxt, self.window(), t)

    def _delack_fire(self, now: float) -> None:
        if self.rcv_nxt > self.acked:
            self.ack_now(now)


class TcpFlow:
    """A ``tcp`` flow: its connections, their packets on the two routes, its statistics.

    Parameters
    ----------
    net : Network
        The run's network.
    spec : Flow
        The flow (``kind = "tcp"``).
    data, ack : int
        Route of the data segments and of the ACKs.
    end_s : float
        End of the run, seconds.
    """

    def __init__(self, net: Network, spec: Flow, data: int, ack: int, end_s: float) -> None:
        self.net, self.spec, self.data, self.ack = net, spec, data, ack
        self.stop_s = min(end_s, spec.stop_s if spec.stop_s is not None else end_s)
        self.window = (net.warmup, end_s)
        self.stats = TcpStats()
        self.seg: dict[int, tuple[Sender, int, int]] = {}  # data packet -> (sender, seq, end)
        self.acks: dict[int, tuple[Sender, int, int]] = {}  # ack packet -> (sender, ack, wnd)
        self.senders = [Sender(self, i) for i in range(spec.streams)]
        self.receivers = [Receiver(self, i) for i in range(spec.streams)]
        if spec.record_cwnd:
            self.stats.start_series(
                spec.streams, spec.series_interval_us * US, end_s, self.senders[0].cc.cwnd
            )
        if net.routes[data].verdict == "delivered":
            net.route_end[data] = self._segment_arrived
        if net.routes[ack].verdict == "delivered":
            net.route_end[ack] = self._ack_arrived
        net.route_drop[data] = self._forget_segment
        net.route_drop[ack] = self._forget_ack
        if spec.start_s < self.stop_s:
            for s in self.senders:
                s.send_more(spec.start_s)

    def send_segment(self, sender: Sender, seq: int, end: int, t: float) -> None:
        """Put a data segment of ``sender`` on the data route at ``t``."""
        pkt = self.net.send(self.data, end - seq + TCP_IP_HEADER_BYTES, t)
        self.seg[pkt] = (sender, seq, end)

    def send_ack(self, receiver: Receiver, ack: int, wnd: int, t: float) -> None:
        """Put an ACK of ``receiver`` on the reverse route at ``t``."""
        pkt = self.net.send(self.ack, ACK_BYTES, t)
        self.acks[pkt] = (self.senders[receiver.index], ack, wnd)

    def delivered(self, receiver: Receiver, nbytes: int, t: float) -> None:
        """Count ``nbytes`` delivered in order at ``t`` (goodput, completion)."""
        if self.window[0] <= t < self.window[1]:
            self.stats.goodput_bytes += nbytes
        self.stats.add_goodput(receiver.index, t, nbytes)
        if receiver.rcv_nxt + nbytes >= receiver.total:
            self.stats.completed_s.append(t)

    def _segment_arrived(self, pkt: int, t: float) -> None:
        self.net.deliver(pkt, t)
        sender, seq, end = self.seg.pop(pkt)
        self.receivers[sender.index].on_segment(seq, end, t)

    def _ack_arrived(self, pkt: int, t: float) -> None:
        self.net.deliver(pkt, t)
        sender, ack, wnd = self.acks.pop(pkt)
        sender.on_ack(ack, wnd, t)

    def _forget_segment(self, pkt: int, now: float) -> None:
        self.seg.pop(pkt, None)  # the sender learns of it only from ACKs or its timer

    def _forget_ack(self, pkt: int, now: float) -> None:
        self.acks.pop(pkt, None)
