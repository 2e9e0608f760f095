"""Traffic sources, open and closed loop.

Open loop: Poisson, constant, on/off, trace replay; closed loop: request/response,
window-limited bulk transfer.

Open-loop sources are chained: the arrival event of a flow's packet at its first
station also creates and schedules the flow's next packet, so a source costs no
event of its own. Closed-loop sources react to deliveries and drops of their
packets through the network's per-route hooks.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path as FsPath

import numpy as np

from sim.control.cluster import Cluster
from sim.control.resolve import endpoint, resolve, resolve_reply
from sim.engine.network import US, Network, stream
from sim.engine.stations import UNLIMITED
from sim.engine.tcp import TcpFlow, TcpStats
from sim.engine.tcp_rr import TcpRrFlow
from sim.errors import ScenarioError, UserError
from sim.spec.workload import OPEN_LOOP_KINDS, Flow

_BLOCK = 4096
#: Kinds with a reverse route for their replies or acknowledgements.
CLOSED_LOOP_KINDS = ("request-response", "bulk", "tcp")


@dataclass
class FlowState:
    """What a flow did, for the analysis.

    Attributes
    ----------
    flow : Flow
        The spec.
    routes : list of int
        Its data routes (forward direction).
    reply_routes : list of int
        Routes of replies/acks (closed loop).
    rate_pps : float
        Offered rate (open loop), packets/s; NaN for closed loop and traces.
    rtt_done_s, rtt_s : list of float
        Completion time and round-trip time of each request (request-response).
    retransmissions : int or None
        Resends after a loss (request or reply, data or ack) sent in the
        measurement window (closed loop); None for flows that never resend.
    tcp : TcpStats or None
        Goodput, retransmissions, timeouts, SRTT and cwnd of a ``tcp`` flow.
    """

    flow: Flow
    routes: list[int] = field(default_factory=list)
    reply_routes: list[int] = field(default_factory=list)
    rate_pps: float = math.nan
    rtt_done_s: list[float] = field(default_factory=list)
    rtt_s: list[float] = field(default_factory=list)
    retransmissions: int | None = None
    tcp: TcpStats | None = None


def _count_resend(net: Network, st: FlowState, t: float) -> None:
    """Count a resend sent at ``t`` if it is in the measurement window."""
    if t >= net.warmup:
        st.retransmissions += 1


class _Sizes:
    """Packet sizes of a flow: fixed, or drawn in blocks from its distribution."""

    def __init__(self, flow: Flow, rng: np.random.Generator) -> None:
        sizes, probs = flow.size_choices()
        self.fixed = sizes[0] if len(sizes) == 1 else None
        self.sizes = np.asarray(sizes)
        self.probs = np.asarray(probs)
        self.rng = rng
        self.buf: list[int] = []
        self.i = 0

    def next(self) -> int:
        if self.fixed is not None:
            return self.fixed
        if self.i >= len(self.buf):
            self.buf = self.rng.choice(self.sizes, size=_BLOCK, p=self.probs).tolist()
            self.i = 0
        self.i += 1
        return self.buf[self.i - 1]


class _Gaps:
    """Inter-send times (seconds) of an open-loop flow."""

    def __init__(self, flow: Flow, rate_pps: float, rng: np.random.Generator) -> None:
        self.kind = flow.kind
        self.rng = rng
        self.mean = 1.0 / rate_pps
        self.buf: list[float] = []
        self.i = 0
        self.flow = flow
        self.on_left = 0.0
        if self.kind == "onoff":
            self.on_left = self._period(flow.on_mean_us * US)

    def _period(self, mean_s: float) -> float:
        if self.flow.period_distribution == "pareto":
            a = self.flow.pareto_shape
            xm = mean_s * (a - 1.0) / a
            return xm * (1.0 + float(self.rng.pareto(a)))
        return float(self.rng.exponential(mean_s))

    def next(self) -> float:
        if self.kind == "constant":
            return self.mean
        if self.kind == "onoff":
            # constant spacing measured in ON time only: the clock to the next packet
            # runs during ON periods and stops during OFF periods, so the part of the
            # gap left when an ON period ends carries over to the next ON period. The
            # long-run rate is then exactly rate * on / (on + off). (Restarting the
            # gap at each ON period sent ceil(on/gap) packets per period: up to
            # 1/(on+off) packets/s whatever the rate.)
            need = self.mean
            elapsed = 0.0
            while need > self.on_left:
                need -= self.on_left
                elapsed += self.on_left + self._period(self.flow.off_mean_us * US)
                self.on_left = self._period(self.flow.on_mean_us * US)
            self.on_left -= need
            return elapsed + need
        if self.i >= len(self.buf):
            self.buf = self.rng.exponential(self.mean, size=_BLOCK).tolist()
            self.i = 0
        self.i += 1
        return self.buf[self.i - 1]


class OpenLoop:
    """Poisson, constant-rate or on/off source on one route."""

    def __init__(self, net: Network, st: FlowState, route: int, seed: int, end_s: float) -> None:
        f = st.flow
        self.net = net
        self.route = route
        self.sizes = _Sizes(f, stream(seed, "flow", f.name, "size"))
        self.gaps = _Gaps(f, st.rate_pps, stream(seed, "flow", f.name, "arrivals"))
        self.stop = min(end_s, f.stop_s if f.stop_s is not None else end_s)
        self.first = net.route_arrive[route][0]
        self.t = f.start_s + self.gaps.next()
        if self.t < self.stop:
            self._send()

    def _send(self) -> None:
        net = self.net
        pkt = net.rec.new_packet(self.route, self.sizes.next(), self.t)
        net.schedule(self.t, pkt, self.fire)

    def fire(self, ev) -> None:
        """First-hop arrival of the current packet; schedules the next one."""
        self.first(ev)
        self.t += self.gaps.next()
        if self.t < self.stop:
            self._send()


class TraceReplay:
    """Replays ``time_s,size_bytes,src,dst`` rows, one packet each.

    Only rows timed inside the flow's window ``[start_s, stop_s)`` (and before the
    end of the run) are sent, at their own times.
    """

    def __init__(
        self, net: Network, rows: list[tuple[float, int, int]], start_s: float, stop_s: float
    ) -> None:
        self.net = net
        self.rows = [r for r in rows if start_s <= r[0] < stop_s]
        self.i = 0
        if self.rows:
            self._send()

    def _send(self) -> None:
        t, size, route = self.rows[self.i]
        pkt = self.net.rec.new_packet(route, size, t)
        self.net.schedule(t, pkt, self.fire)

    def fire(self, ev) -> None:
        """Send the current row's packet and schedule the next row."""
        t, size, route = self.rows[self.i]
        self.net.route_arrive[route][0](ev)
        self.i += 1
        if self.i < len(self.rows):
            self._send()


TRACE_HEADER = ["time_s", "size_bytes", "src", "dst"]


def _trace_error(cl: Cluster, field_name: str, problem: str, fix: str) -> ScenarioError:
    return ScenarioError(problem, file=cl.file, field=field_name, fix=fix)


def _trace_row(row: list[str], where: str, cl: Cluster, fld: str) -> tuple[float, int, str, str]:
    """One checked row ``(time_s, size_bytes, src, dst)``."""
    try:
        t, size, src, dst = row
        t_s, size_b = float(t), int(size)
    except ValueError:
        shown = repr(row) if len(repr(row)) < 200 else repr(row)[:200] + "..."
        raise _trace_error(
            cl,
            fld,
            f"{where}: expected time_s,size_bytes,src,dst, got {shown}",
            "write four comma-separated values per row",
        ) from None
    if not (math.isfinite(t_s) and t_s >= 0) or not 20 <= size_b <= 65535:
        raise _trace_error(
            cl,
            fld,
            f"{where}: time must be >= 0 and size 20..65535 B, got {row!r}",
            "correct that row",
        )
    return t_s, size_b, src.strip(), dst.strip()


def _decoded_lines(fh) -> Iterator[str]:
    """Decode the lines of a binary file as UTF-8 one by one (a leading BOM dropped).

    One at a time, so an undecodable byte is reported on its own line.
    """
    for i, raw in enumerate(fh):
        yield raw.decode("utf-8-sig" if i == 0 else "utf-8")


def read_trace(cl: Cluster, flow: Flow, field_name: str) -> list[tuple[float, int, str, str]]:
    """Read and check a trace CSV (``time_s,size_bytes,src,dst``, times ascending).

    The file is UTF-8 (a leading byte-order mark is allowed). Undecodable bytes,
    fields over the :mod:`csv` limit (128 KiB) and NUL bytes are reported with their
    line, like any malformed row.
    """
    path = FsPath(flow.trace_file or "")
    fix_file = "give a readable UTF-8 CSV with columns time_s,size_bytes,src,dst"
    try:
        fh = path.open("rb")
    except OSError as exc:
        raise _trace_error(
            cl,
            field_name,
            f"cannot read trace file {str(path)!r} ({exc.strerror or exc})",
            fix_file,
        ) from None
    rows: list[tuple[float, int, str, str]] = []
    last = -math.inf
    reader = csv.reader(_decoded_lines(fh))
    with fh:
        try:
            header = next(reader, None)
            if header is None or [h.strip() for h in header] != TRACE_HEADER:
                raise _trace_error(
                    cl,
                    field_name,
                    f"trace file {str(path)!r} must start with the header {','.join(TRACE_HEADER)}",
                    "add that header line",
                )
            for row in reader:
                if not row or all(not c.strip() for c in row):
                    continue
                where = f"{path}:{reader.line_num}"
                r = _trace_row(row, where, cl, field_name)
                if r[0] < last:
                    raise _trace_error(
                        cl,
                        field_name,
                        f"{where}: time {r[0]} s is before the previous row's {last} s "
                        "(rows out of order)",
                        "sort the trace by time_s",
                    )
                last = r[0]
                rows.append(r)
        except (UnicodeDecodeError, csv.Error) as exc:
            why = "not UTF-8 text" if isinstance(exc, UnicodeDecodeError) else str(exc)
            line = reader.line_num + (1 if isinstance(exc, UnicodeDecodeError) else 0)
            raise _trace_error(cl, field_name, f"{path}:{line}: {why}", fix_file) from None
    return rows


class RequestResponse:
    """``outstanding`` requests in flight; each reply triggers the next request.

    A transaction's round-trip time runs from the *first* send of its request to
    the reply that completes it, so a lost request or reply adds the timeout the
    client waited (``rto_us``) and the resend's own trip.
    """

    def __init__(self, net: Network, st: FlowState, req: int, rep: int, end_s: float) -> None:
        f = st.flow
        self.net, self.st, self.req, self.rep = net, st, req, rep
        st.retransmissions = 0
        self.sizes = _Sizes(f, stream(net.seed, "flow", f.name, "size"))
        self.stop = min(end_s, f.stop_s if f.stop_s is not None else end_s)
        self.think = f.think_us * US
        self.rto = f.rto_us * US
        self.reply_bytes = f.reply_bytes
        self.parent: dict[int, int] = {}
        self.began: dict[int, float] = {}  # request packet -> its transaction's first send
        if net.routes[req].verdict == "delivered":
            net.route_end[req] = self._request_done
        if net.routes[rep].verdict == "delivered":
            net.route_end[rep] = self._reply_done
        net.route_drop[req] = self._lost_request
        net.route_drop[rep] = self._lost_reply
        # the window test outside the loop: a huge ``outstanding`` outside the window
        # (not counted by the work estimate) must not loop
        if f.start_s < self.stop:
            for _ in range(f.outstanding):
                self._begin(f.start_s, f.start_s)

    def _begin(self, t: float, began: float) -> None:
        self.began[self.net.send(self.req, self.sizes.next(), t)] = began

    def _request_done(self, pkt: int, t: float) -> None:
        self.net.deliver(pkt, t)
        reply = self.net.send(self.rep, self.reply_bytes, t)
        self.parent[reply] = pkt

    def _reply_done(self, pkt: int, t: float) -> None:
        self.net.deliver(pkt, t)
        req = self.parent.pop(pkt)
        self.st.rtt_done_s.append(t)
        self.st.rtt_s.append(t - self.began.pop(req))
        nxt = t + self.think
        if nxt < self.stop:
            self._begin(nxt, nxt)

    def _resend(self, req_pkt: int, now: float) -> None:
        began = self.began.pop(req_pkt)
        t = max(now, self.net.rec.send_s[req_pkt] + self.rto)
        if t < self.stop:
            _count_resend(self.net, self.st, t)
            self._begin(t, began)

    def _lost_request(self, pkt: int, now: float) -> None:
        self._resend(pkt, now)

    def _lost_reply(self, pkt: int, now: float) -> None:
        self._resend(self.parent.pop(pkt), now)


class Bulk:
    """Window-limited transfer: ``window_packets`` in flight, each acknowledged."""

    def __init__(self, net: Network, st: FlowState, data: int, ack: int, end_s: float) -> None:
        f = st.flow
        self.net, self.st, self.data, self.ack = net, st, data, ack
        st.retransmissions = 0
        self.sizes = _Sizes(f, stream(net.seed, "flow", f.name, "size"))
        self.stop = min(end_s, f.stop_s if f.stop_s is not None else end_s)
        self.rto = f.rto_us * US
        self.ack_bytes = f.ack_bytes
        self.parent: dict[int, int] = {}
        if net.routes[data].verdict == "delivered":
            net.route_end[data] = self._data_done
        if net.routes[ack].verdict == "delivered":
            net.route_end[ack] = self._ack_done
        net.route_drop[data] = self._lost
        net.route_drop[ack] = self._lost_ack
        if f.start_s < self.stop:
            for _ in range(f.window_packets):
                net.send(data, self.sizes.next(), f.start_s)

    def _data_done(self, pkt: int, t: float) -> None:
        self.net.deliver(pkt, t)
        a = self.net.send(self.ack, self.ack_bytes, t)
        self.parent[a] = pkt

    def _ack_done(self, pkt: int, t: float) -> None:
        self.net.deliver(pkt, t)
        self.parent.pop(pkt)
        if t < self.stop:
            self.net.send(self.data, self.sizes.next(), t)

    def _lost(self, pkt: int, now: float) -> None:
        t = max(now, self.net.rec.send_s[pkt] + self.rto)
        if t < self.stop:
            _count_resend(self.net, self.st, t)
            self.net.send(self.data, self.sizes.next(), t)

    def _lost_ack(self, pkt: int, now: float) -> None:
        self._lost(self.parent.pop(pkt), now)


def _flow_route(net: Network, cl: Cluster, src: str, dst: str, src_field: str, dst_field: str):
    # endpoint() raises ResolveError, a UserError but not a ScenarioError: catch
    # UserError so an unknown endpoint names the flow field it came from
    eps = []
    for text, fld in ((src, src_field), (dst, dst_field)):
        try:
            eps.append(endpoint(cl, text))
        except UserError as err:
            err.field = err.field or fld
            err.args = (str(err),)
            raise
    try:
        return resolve(cl, *eps)
    except UserError as err:
        err.field = err.field or src_field
        err.args = (str(err),)
        raise


def offered_pps(net: Network, f: Flow, route: int, file: str, fld: str) -> float:
    """Offered rate of an open-loop flow on ``route``, packets/s (during ON for onoff).

    Raises
    ------
    ScenarioError
        ``load`` on a path without a finite capacity.
    """
    mean = f.mean_size_bytes()
    if f.rate_pps is not None:
        return f.rate_pps
    if f.rate_gbps is not None:
        return f.rate_gbps * 1e9 / (8.0 * mean)
    if not net.route_stations[route]:
        raise ScenarioError(
            f"flow {f.name!r} has load set but its path crosses no station "
            f"({net.routes[route].reason or 'no path'})",
            file=file,
            field=f"{fld}.load",
            fix="give rate_pps or rate_gbps instead",
        )
    cap = net.capacity_pps(route, mean)
    if math.isinf(cap):
        raise ScenarioError(
            f"flow {f.name!r} has load set but every station on its path has zero "
            "service time, so the path has no finite capacity",
            file=file,
            field=f"{fld}.load",
            fix="give rate_pps or rate_gbps instead, or a nonzero station cost",
        )
    return f.load * cap


def flow_routes(net: Network, cl: Cluster, i: int, f: Flow) -> tuple[int, int | None]:
    """Compile a (non-trace) flow's forward route and, for closed loops, its reply route."""
    fld = f"flows.{i}"
    fwd = _flow_route(net, cl, f.src, f.dst, f"{fld}.src", f"{fld}.dst")
    r = net.add_route(fwd)
    if f.kind not in CLOSED_LOOP_KINDS:
        return r, None
    rep = resolve_reply(cl, fwd) if fwd.verdict != "dropped" else None
    if rep is None:
        rep = resolve(cl, endpoint(cl, f.dst), endpoint(cl, f.src))
    return r, net.add_route(rep)


def install_flows(net: Network, cl: Cluster, end_s: float, warnings: list[str]) -> list[FlowState]:
    """Resolve every flow's paths, compile routes, and start its source.

    Parameters
    ----------
    net : Network
        The run's network.
    cl : Cluster
        The built cluster.
    end_s : float
        End of the simulation, seconds.
    warnings : list of str
        Receives warnings (e.g. offered load >= 1 with an unlimited buffer).
    """
    states: list[FlowState] = []
    for i, f in enumerate(cl.scenario.flows):
        st = FlowState(f)
        fld = f"flows.{i}"
        if f.kind == "trace":
            raw = read_trace(cl, f, f"{fld}.trace_file")
            routes: dict[tuple[str, str], int] = {}
            rows = []
            for t, size, src, dst in raw:
                key = (src, dst)
                if key not in routes:
                    tf = f"{fld}.trace_file"
                    path = _flow_route(net, cl, src, dst, tf, tf)
                    routes[key] = net.add_route(path)
                    st.routes.append(routes[key])
                rows.append((t, size, routes[key]))
            TraceReplay(net, rows, f.start_s, min(end_s, f.stop_s or end_s))
            states.append(st)
            continue
        r, rr = flow_routes(net, cl, i, f)
        st.routes.append(r)
        if rr is not None:
            st.reply_routes.append(rr)
            if f.kind == "request-response" and f.tcp_rr():
                TcpRrFlow(net, st, r, rr, end_s)
            elif f.kind == "request-response":
                RequestResponse(net, st, r, rr, end_s)
            elif f.kind == "tcp":
                st.tcp = TcpFlow(net, f, r, rr, end_s).stats
            else:
                Bulk(net, st, r, rr, end_s)
            states.append(st)
            continue
        mean = f.mean_size_bytes()
        pps = offered_pps(net, f, r, cl.file, fld)
        st.rate_pps = pps
        if net.route_stations[r]:
            cap = net.capacity_pps(r, mean)
            rho = pps * f.duty_cycle() / cap
            bn = net.by_name[net.bottleneck(r, mean)]
            if rho >= 1.0 and bn.limit >= UNLIMITED:
                warnings.append(
                    f"flow {f.name!r} offers {rho:.2f} of its bottleneck {bn.name} capacity "
                    "with an unlimited buffer: the queue grows without bound and latency "
                    "depends on the run length"
                )
        OpenLoop(net, st, r, net.seed, end_s)
        states.append(st)
    _warn_overloaded_stations(net, states, warnings)
    return states


def _warn_overloaded_stations(net: Network, states: list[FlowState], warnings: list[str]) -> None:
    """Warn about unlimited-buffer stations whose open-loop traffic adds up to >= 1.

    Adds each open-loop flow's offered work (rate x duty cycle x mean service time
    at the mean packet size) at every station it crosses, so flows that are fine
    alone but overload a shared station together are caught too.
    """
    work: dict[int, float] = {}
    for st in states:
        f = st.flow
        if f.kind not in OPEN_LOOP_KINDS or math.isnan(st.rate_pps):
            continue
        duty = f.duty_cycle()
        mean = f.mean_size_bytes()
        for r in st.routes:
            for h, idx in enumerate(net.route_stations[r]):
                s = net.stations[idx]
                service = s.service_s(r, h, mean)
                work[idx] = work.get(idx, 0.0) + st.rate_pps * duty * service / s.servers
    for idx, rho in sorted(work.items()):
        s = net.stations[idx]
        named = any(f" {s.name} " in w for w in warnings)
        if rho >= 1.0 and s.limit >= UNLIMITED and not named:
            warnings.append(
                f"station {s.name} is offered {rho:.2f} of its capacity by the open-loop "
                "flows with an unlimited buffer: the queue grows without bound and latency "
                "depends on the run length"
            )
