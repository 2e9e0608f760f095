"""Typed records of the replica's measurements, fits and comparisons.

One :data:`SCHEMA_VERSION` for every file the validation writes: the
measurements and TCP sets (JSON, read back by :func:`read_record`), the parameter
file's ``[calibration]`` table (TOML) and ``compare --json``. Reading a file of
another kind or version is one clear error.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from sim.analysis.io import OUTPUT_FIX, atomic_write_text
from sim.errors import UserError

SCHEMA_VERSION = 2
"""Version of every validation record (measurements, TCP sets, params, comparison)."""

MEASUREMENTS_KIND = "podnetsim-testbed-measurements"
TCP_SET_KIND = "podnetsim-tcp-measurements"

Case = Literal["localhost", "same_node", "cross_node", "ext_nomasq", "ext_masq"]
Outcome = Literal["round trip", "reply lost", "request lost", "misdelivered", "unknown"]


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Versioned(_Record):
    schema_version: Literal[SCHEMA_VERSION] = SCHEMA_VERSION


class RttCase(_Record):
    """One measured RTT case; times in microseconds.

    ``p50_us``/``p99_us`` are the medians over the repeats of each repeat's
    percentile, ``spread_*`` their (min, max); ``samples`` counts round trips.
    """

    title: str
    src: str
    dst: str
    src_ns: str
    dst_ns: str
    dst_addr: str
    ok: bool
    p50_us: float | None = None
    p99_us: float | None = None
    spread_p50_us: tuple[float, float] | None = None
    spread_p99_us: tuple[float, float] | None = None
    samples: int = 0
    error: str | None = None
    per_repeat: list[dict[str, Any]] = []


class Observation(_Record):
    """What a receiver in the replica saw of one endpoint pair's requests."""

    outcome: Outcome
    seen_source: str | None = None
    seen_source_scenario: str | None = None
    snat: bool = False
    delivered_to: str | None = None
    served: int | None = None
    send_errors: int | None = None
    error: str | None = None


class PairResult(_Record):
    """One probed endpoint pair."""

    src: str
    dst: str
    dst_addr: str
    observed: Observation


IP_UDP_HEADER_BYTES = 28
"""IPv4 (20 B) plus UDP (8 B) header: payload + this = IP packet size, bytes."""


class Timing(_Record):
    """How the RTT cases are timed: ``repeats`` sockperf runs of ``duration_s`` per case."""

    tool: Literal["sockperf"] = "sockperf"
    payload_bytes: int = Field(32, ge=14, le=1472)
    duration_s: float = Field(2.0, ge=1.0, le=60.0, multiple_of=1.0)  # sockperf -t: whole s
    repeats: int = Field(5, ge=1, le=50)
    busy_poll: bool | None = None

    @property
    def ip_bytes(self) -> int:
        """IP packet size of requests and replies, bytes."""
        return self.payload_bytes + IP_UDP_HEADER_BYTES


class ScenarioRef(_Record):
    """The scenario measured: name, file, digest and ``--set`` overrides."""

    name: str
    file: str
    sha256: str
    overrides: dict[str, Any] = {}


class Measurements(_Versioned):
    """A ``testbed measure`` file."""

    what: ClassVar[str] = "measurements"
    written_by: ClassVar[str] = "`podnetsim testbed measure`"
    kind: Literal[MEASUREMENTS_KIND] = MEASUREMENTS_KIND
    created: str = ""
    scenario: ScenarioRef
    prefix: str = "pns-"
    mapping: dict[str, Any] = {}
    timing: Timing
    machine: dict[str, Any] = {}
    rtt: dict[Case, RttCase] = {}
    pairs: list[PairResult] = []
    elapsed_s: float = 0.0


class CaseComparison(_Record):
    """Measured vs predicted p50 of one case, microseconds."""

    src: str
    dst: str
    title: str
    fitted: bool
    measured_p50_us: float | None
    spread_p50_us: tuple[float, float] | None = None
    predicted_p50_us: float | None = None
    simulated_network_p50_us: float | None = None
    analytic_network_us: float | None = None
    ratio: float | None = None
    within: bool | None = None
    note: str = ""


class RatioCheck(_Record):
    """Cross-node / same-node RTT ratio, measured and predicted."""

    measured: float
    predicted: float
    ratio: float
    within: bool


class Verdict(_Record):
    """The model's and the replica's outcome of one endpoint pair."""

    src: str
    dst: str
    model_outcome: str
    model_seen_source: str | None
    model_seen_source_replica: str | None
    model_snat: bool
    model_reason: str
    observed_outcome: str | None
    observed_seen_source: str | None
    observed_seen_source_scenario: str | None
    observed_snat: bool
    agree: bool


class Comparison(_Versioned):
    """``podnetsim compare``'s result."""

    scenario: str
    endpoint_us: float
    ip_bytes: int
    rtt: dict[str, CaseComparison]
    ratio_cross_same: RatioCheck | None
    verdicts: list[Verdict]
    mapping: list[str]


class Goodput(_Record):
    """One measured ``iperf3`` figure (``-P streams``), Gbit/s."""

    placement: Literal["same", "cross"]
    streams: int = Field(ge=1, le=128)
    gbps: float = Field(gt=0, allow_inf_nan=False)


class TcpSet(_Versioned):
    """A ``testbed tcp -o`` file: what :func:`sim.testbed.iperf.measure_tcp_set` measured.

    The idle 64 B round trips (us) and the goodputs per placement and stream count,
    kept so the fit and predictions of :func:`sim.validate.tcp.compare_tcp` can be
    redone without the kernel (``podnetsim compare``), e.g. after a model change.
    ``seconds`` is the length of each ``iperf3`` test.
    """

    what: ClassVar[str] = "TCP set"
    written_by: ClassVar[str] = "`podnetsim testbed tcp -o FILE`"
    kind: Literal[TCP_SET_KIND] = TCP_SET_KIND
    created: str = ""
    scenario: str
    pairs: dict[Literal["same", "cross"], tuple[str, str]]
    idle_p50_us: dict[Literal["same", "cross"], float]
    goodput: list[Goodput] = Field(min_length=1)
    seconds: float = Field(gt=0)

    @model_validator(mode="after")
    def _complete(self) -> TcpSet:
        for key in ("same", "cross"):
            if key not in self.pairs or key not in self.idle_p50_us:
                raise ValueError(f"pairs and idle_p50_us need both 'same' and 'cross' ({key})")
        if not any(g.placement == "same" and g.streams == 1 for g in self.goodput):
            raise ValueError("no same-node one-stream goodput: the fit needs it")
        return self

    def measured_gbps(self) -> dict[tuple[str, int], float]:
        """``{(placement, streams): goodput}``, Gbit/s."""
        return {(g.placement, g.streams): g.gbps for g in self.goodput}


def write_json(record: BaseModel, path: str | Path) -> None:
    """Write a record as indented JSON, atomically (a failed write is one ``--output`` line)."""
    atomic_write_text(Path(path), record.model_dump_json(indent=2) + "\n", "--output", OUTPUT_FIX)


def write_tcp_set(
    path: str | Path,
    scenario: str,
    pairs: dict[str, tuple[str, str]],
    idle_p50_us: dict[str, float],
    gbps: dict[tuple[str, int], float],
    seconds: float,
) -> None:
    """Write a measured :class:`TcpSet` atomically (goodputs in Gbit/s)."""
    doc = TcpSet(
        created=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        scenario=str(scenario),
        pairs=pairs,
        idle_p50_us=idle_p50_us,
        goodput=[Goodput(placement=p, streams=n, gbps=g) for (p, n), g in gbps.items()],
        seconds=seconds,
    )
    write_json(doc, path)


R = TypeVar("R", Measurements, TcpSet)


def read_record(path: str | Path, *models: type[R]) -> R:
    """Read and validate a measurements file or a TCP set: whichever of ``models`` it is.

    Raises
    ------
    UserError
        Missing file, not JSON, none of the kinds, another schema version, or a
        bad field (one line naming it).
    """
    what = " or ".join(m.what for m in models)
    fix = "give a file written by " + " or ".join(m.written_by for m in models)
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError("file not found", file=str(path), fix="check the path") from None
    except (OSError, ValueError) as err:  # UnicodeDecodeError and JSONDecodeError too
        raise UserError(f"cannot read {what} ({err})", file=str(path), fix=fix) from None
    kind = raw.get("kind") if isinstance(raw, dict) else None
    model = next((m for m in models if m.model_fields["kind"].default == kind), None)
    if model is None:
        raise UserError(f"not a {what} file", file=str(path), fix=fix)
    fix = f"give a file written by {model.written_by}"  # the kind is known now
    if raw.get("schema_version") != SCHEMA_VERSION:
        raise UserError(
            f"{model.what} version {raw.get('schema_version')} is not supported "
            f"(expected {SCHEMA_VERSION})",
            file=str(path),
            field="schema_version",
            fix="measure again with this version of podnetsim",
        )
    try:
        return model.model_validate(raw)
    except ValidationError as err:
        first = err.errors()[0]
        field = ".".join(str(x) for x in first["loc"]) or None
        msg = first["msg"].removeprefix("Value error, ")
        raise UserError(msg, file=str(path), field=field, fix=fix) from None
