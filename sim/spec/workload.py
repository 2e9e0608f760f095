"""Workload (flow) specifications: what traffic a scenario offers.

A flow is traffic between two endpoints of the scenario (``pod``,
``pod/container``, a node, an external host, or an IP address). Its kind sets how
packets are generated:

``poisson``          open loop, exponential inter-arrival times
``constant``         open loop, fixed inter-arrival time
``onoff``            open loop bursts: sends at the given rate during ON periods,
                     silent during OFF periods (exponential or Pareto lengths)
``trace``            replays a CSV ``time_s,size_bytes,src,dst`` (one packet a row)
``request-response`` closed loop: ``outstanding`` requests in flight; each is
                     answered along the reverse path; gives round-trip times.
                     ``transport = "tcp"``: transactions over ``streams`` TCP
                     connections, one in flight each, like netperf ``TCP_RR``
                     (:mod:`sim.engine.tcp_rr`)
``bulk``             window-limited transfer: ``window_packets`` in flight, each
                     acknowledged by a small reply; a fixed window, not TCP
``tcp``              TCP bulk transfer (``bytes``, or until ``stop_s``) over
                     ``streams`` connections: slow start, NewReno or CUBIC
                     congestion control, RTO, delayed ACKs (:mod:`sim.engine.tcp`)
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

#: Simple IMIX (Agilent/Cisco "simple IMIX"): IP packet sizes and weights 7:4:1.
IMIX_SIZES_BYTES = (40, 576, 1500)
IMIX_WEIGHTS = (7, 4, 1)

OPEN_LOOP_KINDS = ("poisson", "constant", "onoff")
FlowKind = Literal["poisson", "constant", "onoff", "trace", "request-response", "bulk", "tcp"]

#: Ethernet MTU, bytes: the IP packet size of a full TCP segment.
MTU_BYTES = 1500
#: IPv4 + TCP headers without options, bytes (RFC 791, RFC 9293).
TCP_IP_HEADER_BYTES = 40
#: Largest GSO/TSO super-segment, bytes of IP packet (Linux ``GSO_MAX_SIZE``, 64 KB).
TSO_MAX_BYTES = 65535
#: Linux ``tcp_rmem`` default (its middle value), the receive buffer, bytes
#: (``Documentation/networking/ip-sysctl.rst``).
TCP_RMEM_DEFAULT_BYTES = 131072
#: Linux's delayed-ACK timer, microseconds (``TCP_DELACK_MIN`` = HZ/25 = 40 ms).
DELACK_US = 40000.0
#: Most parallel connections of one tcp flow (``iperf3 -P`` allows 128).
MAX_STREAMS = 128
#: Default interval of a tcp flow's cwnd/goodput series, microseconds (10 ms).
SERIES_INTERVAL_US = 10000.0
#: Most rows (connections x intervals) of one flow's series in one run.
MAX_SERIES_ROWS = 1_000_000


class Flow(BaseModel):
    """One flow of packets between two endpoints.

    Attributes
    ----------
    name : str
        Unique flow name (used in results and for random-number streams).
    kind : str
        One of ``poisson``, ``constant``, ``onoff``, ``trace``, ``request-response``,
        ``bulk``.
    src, dst : str
        Endpoints (pod, pod/container, node, external host, or IP address). Not used
        by ``trace`` flows, whose rows name their endpoints.
    rate_pps : float or None
        Offered rate, packets per second (open-loop kinds; during ON for ``onoff``).
    rate_gbps : float or None
        Offered rate in Gbit/s of IP packet bits (alternative to ``rate_pps``).
    load : float or None
        Offered rate as a fraction of the path's bottleneck capacity for the mean
        packet size (alternative to ``rate_pps``/``rate_gbps``).
    size_bytes : int, "imix", or list of int
        IP packet size, bytes: fixed, the simple IMIX mix, or a uniform choice.
    start_s, stop_s : float
        When the flow starts and stops sending, seconds of simulated time.
    on_mean_us, off_mean_us : float
        Mean ON and OFF period lengths of ``onoff`` flows, microseconds.
    period_distribution : {"exponential", "pareto"}
        Distribution of ON/OFF period lengths.
    pareto_shape : float
        Shape (alpha > 1) of Pareto periods.
    trace_file : str or None
        CSV for ``trace`` flows, relative to the scenario file.
    outstanding : int
        Requests in flight of a ``request-response`` flow.
    reply_bytes : int
        Size of each reply of a ``request-response`` flow, bytes.
    think_us : float
        Time between a reply and the next request, microseconds.
    window_packets : int
        Packets in flight of a ``bulk`` flow.
    ack_bytes : int
        Size of each acknowledgement of a ``bulk`` flow, bytes.
    rto_us : float
        Closed-loop flows resend a lost request/packet after this timeout, microseconds
        (not ``tcp``, whose RTO follows RFC 6298).
    bytes : int or None
        Payload bytes each ``tcp`` connection sends; None sends until ``stop_s`` (or
        the end of the run).
    streams : int
        Parallel connections of a ``tcp`` flow (like ``iperf3 -P``).
    cc : {"cubic", "newreno"}
        Congestion control (CUBIC, RFC 9438, is Linux's default; NewReno, RFC 6582).
    mss_bytes : int
        Maximum segment size, payload bytes (default: the 1500 B MTU minus 40 B of
        IP and TCP headers).
    init_cwnd_segments : int
        Initial congestion window, segments (RFC 6928: 10).
    rcv_buf_bytes : int
        Receive buffer, bytes: the receiver advertises what of it out-of-order data
        leaves free (Linux ``tcp_rmem`` default 131072; the application is assumed
        to read in-order data at once).
    delayed_ack : bool
        Acknowledge every second full segment, or after ``delack_us`` (RFC 5681
        section 4.2; Linux); False acknowledges every segment.
    delack_us : float
        Delayed-ACK timer, microseconds (Linux: 40 ms).
    tso : bool
        Segmentation offload (TSO/GSO on send, GRO on receive): the sender hands the
        path super-segments of up to 64 KB, each one packet at every station.
    record_cwnd : bool
        Keep each connection's congestion window after every change (a time series).
    series_interval_us : float
        Interval of the congestion-window and goodput time series kept with
        ``record_cwnd`` (the ``tcp_series`` results table), microseconds.
    transport : {"udp", "tcp"}
        Transport of a ``request-response`` flow: ``udp`` (one packet each way, resent
        after ``rto_us``) or ``tcp`` (``streams`` connections with one transaction in
        flight each; ``size_bytes`` and ``reply_bytes`` are then the request and
        response payloads, cut into segments of ``mss_bytes``).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    name: str = Field(min_length=1)
    kind: FlowKind = "poisson"
    src: str | None = None
    dst: str | None = None
    rate_pps: float | None = Field(None, gt=0)
    rate_gbps: float | None = Field(None, gt=0)
    load: float | None = Field(None, gt=0)
    size_bytes: int | Literal["imix"] | list[int] = 1500
    start_s: float = Field(0.0, ge=0)
    stop_s: float | None = Field(None, gt=0)
    on_mean_us: float = Field(100.0, gt=0)
    off_mean_us: float = Field(100.0, gt=0)
    period_distribution: Literal["exponential", "pareto"] = "exponential"
    pareto_shape: float = Field(1.5, gt=1)
    trace_file: str | None = None
    outstanding: int = Field(1, ge=1)
    reply_bytes: int = Field(64, ge=20, le=65535)
    think_us: float = Field(0.0, ge=0)
    window_packets: int = Field(16, ge=1)
    ack_bytes: int = Field(64, ge=20, le=65535)
    rto_us: float = Field(1000.0, gt=0)
    bytes: int | None = Field(None, ge=1)
    streams: int = Field(1, ge=1, le=MAX_STREAMS)
    cc: Literal["cubic", "newreno"] = "cubic"
    mss_bytes: int = Field(MTU_BYTES - TCP_IP_HEADER_BYTES, ge=1, le=TSO_MAX_BYTES - 40)
    init_cwnd_segments: int = Field(10, ge=1, le=1000)
    rcv_buf_bytes: int = Field(TCP_RMEM_DEFAULT_BYTES, ge=1, le=1 << 30)
    delayed_ack: bool = True
    delack_us: float = Field(DELACK_US, gt=0)
    tso: bool = False
    record_cwnd: bool = False
    series_interval_us: float = Field(SERIES_INTERVAL_US, gt=0)
    transport: Literal["udp", "tcp"] = "udp"

    @model_validator(mode="after")
    def _check_kind_fields(self) -> Flow:
        rates = [r for r in (self.rate_pps, self.rate_gbps, self.load) if r is not None]
        if self.kind in OPEN_LOOP_KINDS:
            if len(rates) != 1:
                raise ValueError(
                    f"a {self.kind} flow needs exactly one of rate_pps, rate_gbps or load "
                    f"(got {len(rates)}); give one positive rate"
                )
        elif rates:
            raise ValueError(
                f"a {self.kind} flow takes no rate_pps/rate_gbps/load; remove it "
                "(closed-loop and trace flows are paced by their replies or their file)"
            )
        if self.kind == "tcp":
            self._check_tcp()
        if self.transport == "tcp":
            self._check_tcp_rr()
        if self.kind == "trace":
            if not self.trace_file:
                raise ValueError("a trace flow needs trace_file = 'path/to/trace.csv'")
        elif self.src is None or self.dst is None:
            raise ValueError(f"a {self.kind} flow needs both src and dst endpoints")
        sizes = self.size_bytes if isinstance(self.size_bytes, list) else [self.size_bytes]
        for s in sizes:
            if s != "imix" and not (20 <= int(s) <= 65535):
                raise ValueError(f"packet size {s} B is outside 20..65535 B")
        if isinstance(self.size_bytes, list) and not self.size_bytes:
            raise ValueError("size_bytes list is empty; give at least one size")
        if self.stop_s is not None and self.stop_s <= self.start_s:
            raise ValueError("stop_s must be after start_s")
        return self

    def _check_tcp(self) -> None:
        """Check the fields of a ``tcp`` flow (raises ValueError)."""
        if "size_bytes" in self.model_fields_set:
            raise ValueError(
                "a tcp flow's packet size is mss_bytes plus 40 B of headers; "
                "remove size_bytes (set mss_bytes instead)"
            )
        self._check_rcv_buf()

    def _check_rcv_buf(self) -> None:
        """Check that the receive buffer holds a segment (raises ValueError)."""
        if self.rcv_buf_bytes < self.mss_bytes:
            raise ValueError(
                f"rcv_buf_bytes ({self.rcv_buf_bytes}) is smaller than one segment "
                f"(mss_bytes {self.mss_bytes}), so nothing could be sent; "
                "give rcv_buf_bytes >= mss_bytes"
            )

    def _check_tcp_rr(self) -> None:
        """Check a request-response flow over TCP (raises ValueError)."""
        if self.kind != "request-response":
            raise ValueError(
                f"transport = 'tcp' applies to request-response flows, not {self.kind}; "
                "remove transport (a tcp flow is TCP already)"
            )
        if self.outstanding != 1:
            raise ValueError(
                f"a request-response flow over tcp keeps one transaction in flight per "
                f"connection (netperf TCP_RR), got outstanding = {self.outstanding}; "
                f"remove outstanding and give streams = {self.outstanding} connections"
            )
        if not isinstance(self.size_bytes, int):
            raise ValueError(
                "a request-response flow over tcp needs one request size, got "
                f"size_bytes = {self.size_bytes!r}; give size_bytes as one payload size in bytes"
            )
        if self.bytes is not None:
            raise ValueError(
                "bytes is the transfer size of a tcp flow; a request-response flow sends "
                "size_bytes per request and reply_bytes per reply: remove bytes"
            )
        self._check_rcv_buf()

    def tcp_rr(self) -> bool:
        """Whether this is a request-response flow over TCP."""
        return self.transport == "tcp"

    def segment_bytes(self) -> int:
        """IP packet size of a full TCP segment (MSS + headers), bytes."""
        return self.mss_bytes + TCP_IP_HEADER_BYTES

    def duty_cycle(self) -> float:
        """Fraction of time an ``onoff`` flow is ON (1 for every other kind)."""
        if self.kind != "onoff":
            return 1.0
        return self.on_mean_us / (self.on_mean_us + self.off_mean_us)

    def size_choices(self) -> tuple[tuple[int, ...], tuple[float, ...]]:
        """Packet sizes (bytes) and their probabilities."""
        if self.kind == "tcp":
            return (self.segment_bytes(),), (1.0,)
        if self.tcp_rr():  # the request's first segment
            return (min(int(self.size_bytes), self.mss_bytes) + TCP_IP_HEADER_BYTES,), (1.0,)
        if self.size_bytes == "imix":
            total = sum(IMIX_WEIGHTS)
            return IMIX_SIZES_BYTES, tuple(w / total for w in IMIX_WEIGHTS)
        if isinstance(self.size_bytes, list):
            n = len(self.size_bytes)
            return tuple(int(s) for s in self.size_bytes), tuple(1.0 / n for _ in range(n))
        return (int(self.size_bytes),), (1.0,)

    def mean_size_bytes(self) -> float:
        """Mean IP packet size, bytes."""
        sizes, probs = self.size_choices()
        return float(sum(s * p for s, p in zip(sizes, probs, strict=True)))
