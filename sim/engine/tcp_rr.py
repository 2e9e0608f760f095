"""Request/response over TCP: a ``request-response`` flow with ``transport = "tcp"``.

Like netperf's ``TCP_RR``: each of the flow's ``streams`` connections is open
from the start (no handshake) and carries one transaction at a time. The client
writes a request of ``size_bytes`` payload; the server reads it whole and writes a
response of ``reply_bytes``; when the client has read the whole response, the
transaction's round-trip time is recorded and, ``think_us`` later, the next
request is written.

Each direction of a connection is a :class:`~sim.engine.tcp.Sender` at one end
and a :class:`~sim.engine.tcp.Receiver` at the other, with everything
:mod:`sim.engine.tcp` models (segments of ``mss_bytes``, slow start and
congestion control, RFC 6298 retransmission timer, delayed ACKs). What is added
here is the two directions sharing their segments:

* Every data segment carries an ACK of the other direction (RFC 9293 section
  3.1: the ACK field is always sent), which cancels that side's pending delayed
  ACK, as Linux's ``tcp_event_ack_sent`` does. So a server that answers at once
  acknowledges the request with its response, and a client that asks again within
  ``delack_us`` acknowledges the response with its next request: a transaction of
  one-segment messages is two packets, as in Linux's interactive ("pingpong")
  mode. Otherwise the delayed-ACK timer sends a pure ACK.
* An ACK carried by a data segment is never a duplicate ACK (RFC 5681 section 2);
  the ACK is processed before the data, as ``tcp_rcv_established`` does.
* The applications set ``TCP_NODELAY`` (netperf ``-D``, most RPC libraries): the
  last, short segment of a message leaves at once (no Nagle delay).

Requests are resent by TCP itself after a loss (fast retransmit or the RTO), so a
loss adds the recovery time to that transaction's round trip. Requests start
only before the flow's ``stop_s`` (or the run's end); responses to them are
always sent. Goodput is request payload delivered in order in the measurement
window; with ``record_cwnd`` the series are those of the requests' direction.
"""

from __future__ import annotations

import math

from sim.engine.network import US, Network
from sim.engine.tcp import Receiver, Sender, TcpStats, Timer
from sim.spec.workload import TCP_IP_HEADER_BYTES, Flow


class _Half:
    """One direction of a connection: its sender, the far end's receiver, its route."""

    __slots__ = ("tx", "rx", "route", "reverse")

    def __init__(self, flow: TcpRrFlow, index: int, route: int) -> None:
        self.tx = Sender(flow, index)
        self.tx.total = 0  # grows as the application writes messages
        self.rx = Receiver(flow, index)
        self.route = route
        self.reverse: _Half | None = None


class _Connection:
    """A client-server connection and the state of its current transaction."""

    __slots__ = ("up", "down", "think", "began_s", "req_end", "rep_end", "answered")

    def __init__(self, flow: TcpRrFlow, index: int, req: int, rep: int) -> None:
        self.up = _Half(flow, index, req)  # client -> server: requests
        self.down = _Half(flow, index, rep)  # server -> client: responses
        self.up.reverse, self.down.reverse = self.down, self.up
        self.think = Timer(flow.net, lambda now: flow.begin(self, now))
        self.began_s = math.nan
        self.req_end = self.rep_end = self.answered = 0  # byte offsets in each stream


class TcpRrFlow:
    """A ``request-response`` flow over TCP: connections, packets, statistics.

    Parameters
    ----------
    net : Network
        The run's network.
    st : FlowState
        The flow's state (:class:`sim.engine.workloads.FlowState`): receives the
        round-trip times and the TCP statistics.
    req, rep : int
        Route of the requests (client to server) and of the responses.
    end_s : float
        End of the run, seconds.
    """

    def __init__(self, net: Network, st, req: int, rep: int, end_s: float) -> None:
        spec: Flow = st.flow
        self.net, self.spec, self.st = net, spec, st
        self.stop_s = math.inf  # the senders always send what was written
        self.req_stop_s = min(end_s, spec.stop_s if spec.stop_s is not None else end_s)
        self.window = (net.warmup, end_s)
        self.think_s = spec.think_us * US
        self.stats = st.tcp = TcpStats()
        self.req_bytes, self.rep_bytes = int(spec.size_bytes), spec.reply_bytes
        self.pkts: dict[int, tuple[_Half, int, int, int, int]] = {}
        self.half_of: dict[object, _Half] = {}
        self.conns = [_Connection(self, i, req, rep) for i in range(spec.streams)]
        for c in self.conns:
            c.down.tx.record = False  # the series is the client's (requests') window
            for h in (c.up, c.down):
                self.half_of[h.tx] = self.half_of[h.rx] = h
        if spec.record_cwnd:
            self.stats.start_series(
                spec.streams, spec.series_interval_us * US, end_s, self.conns[0].up.tx.cc.cwnd
            )
        for r in (req, rep):
            if net.routes[r].verdict == "delivered":
                net.route_end[r] = self._arrived
            net.route_drop[r] = self._forget
        if spec.start_s < self.req_stop_s:
            for c in self.conns:
                self.begin(c, spec.start_s)

    # -- the applications -----------------------------------------------------------------
    def begin(self, c: _Connection, t: float) -> None:
        """Write the next request of connection ``c`` at ``t`` (the client)."""
        if t >= self.req_stop_s:
            return
        c.began_s = t
        c.up.tx.total += self.req_bytes
        c.req_end = c.up.tx.total
        c.rep_end += self.rep_bytes
        c.up.tx.send_more(t)

    def _read(self, c: _Connection, h: _Half, t: float) -> None:
        """Read what arrived in order at the receiving end of ``h`` (the application)."""
        if h is c.up:
            if c.answered < c.req_end <= h.rx.rcv_nxt:  # the server has the whole request
                c.answered = c.req_end
                c.down.tx.total += self.rep_bytes
                c.down.tx.send_more(t)
        elif not math.isnan(c.began_s) and h.rx.rcv_nxt >= c.rep_end:
            self.st.rtt_done_s.append(t)
            self.st.rtt_s.append(t - c.began_s)
            c.began_s = math.nan
            if self.think_s > 0:
                c.think.set(t + self.think_s)
            else:
                self.begin(c, t)

    # -- what the senders and receivers call ------------------------------------------------
    def send_segment(self, sender: Sender, seq: int, end: int, t: float) -> None:
        """Send a data segment of ``sender`` with the ACK of the other direction at ``t``."""
        h = self.half_of[sender]
        rx = h.reverse.rx  # this end's receiver: its ACK rides on the segment
        rx.acked = rx.rcv_nxt
        rx.timer.cancel()
        pkt = self.net.send(h.route, end - seq + TCP_IP_HEADER_BYTES, t)
        self.pkts[pkt] = (h, seq, end, rx.rcv_nxt, rx.window())

    def send_ack(self, receiver: Receiver, ack: int, wnd: int, t: float) -> None:
        """Send a pure ACK of ``receiver`` (on the reverse route) at ``t``."""
        back = self.half_of[receiver].reverse
        pkt = self.net.send(back.route, TCP_IP_HEADER_BYTES, t)
        self.pkts[pkt] = (back, 0, 0, ack, wnd)

    def delivered(self, receiver: Receiver, nbytes: int, t: float) -> None:
        """Count request payload delivered in order at ``t`` (the goodput)."""
        if self.half_of[receiver] is not self._up(receiver):
            return
        if self.window[0] <= t < self.window[1]:
            self.stats.goodput_bytes += nbytes
        self.stats.add_goodput(receiver.index, t, nbytes)

    def _up(self, receiver: Receiver) -> _Half:
        return self.conns[receiver.index].up

    # -- packets -------------------------------------------------------------------------
    def _arrived(self, pkt: int, t: float) -> None:
        self.net.deliver(pkt, t)
        h, seq, end, ack, wnd = self.pkts.pop(pkt)
        has_data = end > seq
        h.reverse.tx.on_ack(ack, wnd, t, carries_data=has_data)
        if has_data:
            h.rx.on_segment(seq, end, t)
            self._read(self.conns[h.rx.index], h, t)

    def _forget(self, pkt: int, now: float) -> None:
        self.pkts.pop(pkt, None)  # TCP learns of it from ACKs or its timer
