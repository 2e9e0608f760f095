"""Work of a run, estimated before it starts, and the ceilings it must stay under.

A scenario can ask for work without bound: ``rate_pps = 1e9`` for 10 s, ``load =
1e30``, a closed loop whose round trip takes no simulated time, ``record_hops``
on millions of packets. :func:`estimate_work` computes from the scenario alone
(compiled routes, no packet sent) how many packets, per-hop records and ON/OFF
periods a run would make; :func:`check_work` stops past a ceiling with one line
naming the estimate and the command-line flag that raises the ceiling.

Estimates per flow (``window`` = the flow's sending window inside the run):

* open loop: offered rate x duty cycle x window (the mean of a Poisson count);
  ``onoff`` flows also draw 2 x window / (on_mean + off_mean) periods;
* closed loop: ``outstanding`` (or ``window_packets``) slots, each cycling once
  per uncongested round trip (mean service + propagation of every hop, plus
  ``think_us``), or once per ``rto_us`` if the path loses the packet; 2 packets a
  cycle when the request reaches its destination;
* trace: the file's rows (its newline count, read without parsing);
* tcp: per connection, one ACK per data segment at most; data at most the path's
  capacity for full segments, and at most the receive window per uncongested round
  trip (and ``bytes``); a path that loses everything: the initial window plus one
  retransmission per minimum RTO (:mod:`sim.engine.tcp`);
* request-response over tcp: per connection and transaction, the segments of the
  request and of the response and one ACK each at most, a transaction taking at
  least the uncongested round trip of a segment each way plus ``think_us``.

Hop records are packets x the stations of their route (traces: :data:`TRACE_HOPS`).

Default ceilings: the engine simulates about 600k packet-hops per wall second on
a 2-core machine (README, ``podnetsim bench``), 5-10 hops a packet, and keeps
about 29 B per packet and 38 B per hop record. :data:`DEFAULT_MAX_PACKETS`
(10 million) is then a few minutes and about 0.3 GB, :data:`DEFAULT_MAX_HOP_RECORDS`
(10 million) about 0.4 GB: past either a run is almost surely a typo, and the flag
lets a user who means it go on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from sim.control.cluster import Cluster, build_cluster
from sim.engine.network import US, Network
from sim.engine.tcp import ACK_BYTES, RTO_MIN_S, series_intervals
from sim.engine.workloads import flow_routes, offered_pps
from sim.errors import ScenarioError, UserError
from sim.spec.scenario import Scenario
from sim.spec.workload import MAX_SERIES_ROWS, Flow

DEFAULT_MAX_PACKETS = 10_000_000
DEFAULT_MAX_HOP_RECORDS = 10_000_000
#: No ceiling can be raised past this (a quadrillion packets is years of wall time).
HIGHEST_CEILING = 1e15
#: Stations per packet assumed for trace rows (the longest path of a cluster,
#: pod to pod across nodes, crosses 10).
TRACE_HOPS = 12


@dataclass(frozen=True)
class FlowWork:
    """Estimated work of one flow.

    Attributes
    ----------
    field : str
        Dotted field of the flow (``flows.2``).
    packets, hop_records, periods : float
        Estimated packets, per-hop rows (0 without ``record_hops``) and ON/OFF
        periods; ``inf`` when unbounded.
    why : str
        How the packet estimate was made, for the message.
    """

    field: str
    packets: float
    hop_records: float
    periods: float
    why: str


@dataclass(frozen=True)
class WorkEstimate:
    """Estimated work of a whole run: the sum over flows, and each flow's part."""

    flows: tuple[FlowWork, ...] = field(default_factory=tuple)

    @property
    def packets(self) -> float:
        """Packets of the run."""
        return math.fsum(f.packets for f in self.flows)

    @property
    def hop_records(self) -> float:
        """Per-hop records of the run (0 without ``record_hops``)."""
        return math.fsum(f.hop_records for f in self.flows)

    @property
    def periods(self) -> float:
        """ON/OFF periods drawn by the run."""
        return math.fsum(f.periods for f in self.flows)


def _route_time_s(net: Network, route: int, size_bytes: float) -> float:
    """Uncongested time through every station of a route (service + propagation), s."""
    total = 0.0
    for idx, extra in zip(net.route_stations[route], net.route_extra[route], strict=False):
        st = net.stations[idx]
        total += st.a + st.b * size_bytes + extra + st.prop
    return total


def _closed_loop(net: Network, f: Flow, fwd: int, rep: int, window_s: float) -> tuple[float, str]:
    slots = f.outstanding if f.kind == "request-response" else f.window_packets
    reply_size = f.reply_bytes if f.kind == "request-response" else f.ack_bytes
    t_fwd = _route_time_s(net, fwd, f.mean_size_bytes())
    t_rep = _route_time_s(net, rep, reply_size)
    rto_s = f.rto_us * US
    if net.routes[fwd].verdict != "delivered":
        cycle_s, per_cycle = max(t_fwd, rto_s), 1
    elif net.routes[rep].verdict != "delivered":
        cycle_s, per_cycle = max(t_fwd + t_rep, rto_s), 2
    else:
        think_s = f.think_us * US if f.kind == "request-response" else 0.0
        cycle_s, per_cycle = t_fwd + t_rep + think_s, 2
    if window_s <= 0:
        return 0.0, "outside the run"
    if cycle_s <= 0:
        return math.inf, "a closed loop whose round trip takes no simulated time"
    cycles = window_s / cycle_s
    why = f"{slots} in flight, a round trip of {cycle_s / US:.3g} us, for {window_s:.3g} s"
    return slots * (per_cycle * cycles + 1), why


def _tcp(net: Network, f: Flow, fwd: int, rep: int, window_s: float) -> tuple[float, str]:
    """Packets (data and ACKs) of a ``tcp`` flow over ``window_s`` seconds, and why."""
    if window_s <= 0:
        return 0.0, "outside the run"
    seg = f.segment_bytes()
    if net.routes[fwd].verdict != "delivered" or net.routes[rep].verdict != "delivered":
        per_stream = f.init_cwnd_segments + window_s / RTO_MIN_S + 1
        return 2 * f.streams * per_stream, f"{f.streams} connection(s) whose path loses them"
    rtt_s = _route_time_s(net, fwd, seg) + _route_time_s(net, rep, ACK_BYTES)
    if rtt_s <= 0:
        return math.inf, "a closed loop whose round trip takes no simulated time"
    by_window = f.streams * math.ceil(f.rcv_buf_bytes / f.mss_bytes) * window_s / rtt_s
    data = min(net.capacity_pps(fwd, seg) * window_s, by_window)
    if f.bytes is not None:
        data = min(data, f.streams * math.ceil(f.bytes / f.mss_bytes))
    data += f.streams * f.init_cwnd_segments
    return 2 * data, f"{f.streams} connection(s), a round trip of {rtt_s / US:.3g} us"


def _tcp_rr(net: Network, f: Flow, fwd: int, rep: int, window_s: float) -> tuple[float, str]:
    """Packets of a request-response flow over TCP over ``window_s`` seconds, and why.

    Per transaction: the request's and the response's segments, and at most one
    pure ACK per segment; a transaction takes at least the uncongested round trip
    of one full segment each way plus ``think_us``.
    """
    if window_s <= 0:
        return 0.0, "outside the run"
    if net.routes[fwd].verdict != "delivered" or net.routes[rep].verdict != "delivered":
        per_stream = f.init_cwnd_segments + window_s / RTO_MIN_S + 1
        return 2 * f.streams * per_stream, f"{f.streams} connection(s) whose path loses them"
    segs = math.ceil(int(f.size_bytes) / f.mss_bytes) + math.ceil(f.reply_bytes / f.mss_bytes)
    cycle_s = (
        _route_time_s(net, fwd, min(int(f.size_bytes), f.mss_bytes) + ACK_BYTES)
        + _route_time_s(net, rep, min(f.reply_bytes, f.mss_bytes) + ACK_BYTES)
        + f.think_us * US
    )
    if cycle_s <= 0:
        return math.inf, "a closed loop whose round trip takes no simulated time"
    per_stream = 2 * segs * (window_s / cycle_s + 1)
    why = f"{f.streams} connection(s), a transaction of {cycle_s / US:.3g} us"
    return f.streams * per_stream, why


def _check_series(f: Flow, end_s: float, file: str, fld: str) -> None:
    """Refuse a cwnd/goodput series of more than :data:`MAX_SERIES_ROWS` rows."""
    rows = f.streams * series_intervals(end_s, f.series_interval_us * US)
    if rows > MAX_SERIES_ROWS:
        least_us = f.streams * end_s / MAX_SERIES_ROWS / US
        raise ScenarioError(
            f"flow {f.name!r} would keep {rows:.3g} series rows ({f.streams} connection(s) "
            f"x {end_s:.3g} s / {f.series_interval_us:.3g} us), over {MAX_SERIES_ROWS:,}",
            file=file,
            field=f"{fld}.series_interval_us",
            fix=f"give series_interval_us >= {least_us:.3g}, or a shorter run",
        )


def _trace_rows(f: Flow) -> float:
    """Newlines in the trace file (its rows, plus the header), without parsing it."""
    n = 0
    try:
        with Path(f.trace_file or "").open("rb") as fh:
            while chunk := fh.read(1 << 20):
                n += chunk.count(b"\n")
    except OSError:
        return 0.0  # reported with its field when the run reads the trace
    return float(n)


def _flow_work(net: Network, cl: Cluster, i: int, f: Flow, end_s: float, hops: bool) -> FlowWork:
    fld = f"flows.{i}"
    stop_s = min(end_s, f.stop_s if f.stop_s is not None else end_s)
    window_s = max(0.0, stop_s - f.start_s)
    periods = 0.0
    if f.kind == "trace":
        rows = _trace_rows(f)
        return FlowWork(fld, rows, rows * TRACE_HOPS if hops else 0.0, 0.0, "rows of its file")
    fwd, rep = flow_routes(net, cl, i, f)
    if f.record_cwnd and (f.kind == "tcp" or f.tcp_rr()):
        _check_series(f, end_s, cl.file, fld)
    if f.kind == "tcp" or f.tcp_rr():
        est = _tcp if f.kind == "tcp" else _tcp_rr
        packets, why = est(net, f, fwd, rep, window_s)
        per_packet_hops = (len(net.route_stations[fwd]) + len(net.route_stations[rep])) / 2
    elif rep is not None:
        packets, why = _closed_loop(net, f, fwd, rep, window_s)
        per_packet_hops = (len(net.route_stations[fwd]) + len(net.route_stations[rep])) / 2
    else:
        pps = offered_pps(net, f, fwd, cl.file, fld)
        packets = pps * f.duty_cycle() * window_s
        why = f"{pps:.3g} packets/s for {window_s:.3g} s"
        if f.kind == "onoff":
            periods = 2.0 * window_s / ((f.on_mean_us + f.off_mean_us) * US)
        per_packet_hops = len(net.route_stations[fwd])
    hop_records = packets * max(per_packet_hops, 1) if hops else 0.0
    return FlowWork(fld, packets, hop_records, periods, why)


def estimate_work(
    scenario: Scenario,
    cluster: Cluster | None = None,
    *,
    duration_s: float | None = None,
    record_hops: bool | None = None,
    file: str = "<scenario>",
) -> WorkEstimate:
    """Estimate the packets, hop records and ON/OFF periods of one run.

    Parameters
    ----------
    scenario : Scenario
        The validated scenario.
    cluster : Cluster, optional
        A cluster already built from ``scenario`` (built here otherwise).
    duration_s : float, optional
        Run length, seconds (default: the scenario's).
    record_hops : bool, optional
        Whether per-hop rows are kept (default: the scenario's).
    file : str
        Scenario file name for messages.

    Returns
    -------
    WorkEstimate

    Raises
    ------
    UserError
        A flow whose endpoints do not resolve, or ``load`` without a finite capacity
        (the same errors the run would give).
    """
    sim = scenario.simulation
    end_s = sim.duration_s if duration_s is None else duration_s
    hops = sim.record_hops if record_hops is None else record_hops
    cl = cluster if cluster is not None else build_cluster(scenario, file)
    net = Network(scenario.costs, sim.seed, 0.0, False)  # scratch: routes, no packet
    flows = tuple(_flow_work(net, cl, i, f, end_s, hops) for i, f in enumerate(scenario.flows))
    return WorkEstimate(flows)


def _amount(x: float) -> str:
    return f"about {x:.3g}" if math.isfinite(x) else "an unbounded number of"


def check_work(
    estimate: WorkEstimate,
    *,
    max_packets: float = DEFAULT_MAX_PACKETS,
    max_hop_records: float = DEFAULT_MAX_HOP_RECORDS,
    file: str = "<scenario>",
    packets_flag: str | None = "--max-packets",
    hops_flag: str | None = "--max-hop-records",
) -> None:
    """Stop with one line if ``estimate`` passes a ceiling.

    Parameters
    ----------
    estimate : WorkEstimate
        From :func:`estimate_work`.
    max_packets : float
        Ceiling on packets, and on ON/OFF periods.
    max_hop_records : float
        Ceiling on per-hop records.
    file : str
        Scenario file name for the message.
    packets_flag, hops_flag : str or None
        The options that raise each ceiling, named in the fix (None: the
        caller has none, e.g. a batch run, which keeps the default ceilings).

    Raises
    ------
    UserError
        Naming the flow that contributes most, the estimate and the flag.
    """
    shorten = "shorten simulation.duration_s or lower the flow's rate"
    checks = (
        ("packets", max_packets, packets_flag, shorten),
        ("periods", max_packets, packets_flag, "lengthen on_mean_us/off_mean_us"),
        ("hop_records", max_hop_records, hops_flag, f"{shorten}, or do not record hops"),
    )
    for attr, ceiling, flag, fix in checks:
        total = getattr(estimate, attr)
        if not total <= ceiling:  # NaN (inf x an empty window) counts as past it
            raise _over(estimate, attr, ceiling, flag, fix, file)


_WHAT = {"packets": "packets", "periods": "ON/OFF periods", "hop_records": "per-hop records"}


def _over(est: WorkEstimate, attr: str, ceiling: float, flag: str, fix: str, file: str):
    """Return the error for ``attr`` of ``est`` past ``ceiling``, blaming the largest flow."""
    total = getattr(est, attr)
    worst = max(est.flows, key=lambda f: getattr(f, attr))
    what = f"the run would make {_amount(total)} {_WHAT[attr]} ({worst.why})"
    if not math.isfinite(total):
        if "no simulated time" in worst.why:
            fix = "give a station on the path a nonzero cost, or think_us > 0"
        return UserError(what, file=file, field=worst.field, fix=fix)
    if flag and total <= HIGHEST_CEILING:
        fix += f", or allow it with {flag} {math.ceil(total)}"
    return UserError(
        f"{what}, past the ceiling of {ceiling:,.0f}", file=file, field=worst.field, fix=fix
    )
