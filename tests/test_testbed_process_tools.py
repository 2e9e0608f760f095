"""The process tools of the kernel measurements, on small local servers (no root needed)."""

import socket
import sys

import pytest

from sim.testbed.errors import ProbeError
from sim.testbed.timing import in_rounds, run_bounded, serving


def _free_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _server(port: int, kind: str) -> list[str]:
    """A Python server that binds (and for TCP listens on) ``port``, then waits."""
    code = (
        f"import socket, time; s = socket.socket(socket.AF_INET, socket.{kind});"
        f"s.bind(('127.0.0.1', {port}));"
        + ("s.listen();" if kind == "SOCK_STREAM" else "")
        + "time.sleep(60)"
    )
    return [sys.executable, "-c", code]


@pytest.mark.parametrize(("kind", "tcp"), [("SOCK_DGRAM", False), ("SOCK_STREAM", True)])
def test_serving_waits_for_the_socket_and_kills_the_server_at_the_end(kind, tcp):
    port = _free_port(getattr(socket, kind))
    with serving(None, _server(port, kind), port, tcp=tcp) as srv:
        assert srv.poll() is None
        with socket.socket(socket.AF_INET, getattr(socket, kind)) as s:
            with pytest.raises(OSError):  # the server holds the port
                s.bind(("127.0.0.1", port))
    assert srv.returncode is not None


def test_a_server_that_exits_is_reported_with_its_status_and_output():
    argv = [sys.executable, "-c", "print('no such address'); raise SystemExit(3)"]
    with pytest.raises(ProbeError, match=r"did not open port 9 \(exit 3\): no such address"):
        with serving(None, argv, 9):
            pass


def test_a_client_past_its_time_bound_is_killed_and_reported():
    with pytest.raises(ProbeError, match="exceeded its time bound of 0.2 s"):
        run_bounded(None, [sys.executable, "-c", "import time; time.sleep(30)"], 0.2)
    done = run_bounded(None, [sys.executable, "-c", "print('hi')"], 10)
    assert (done.returncode, done.stdout) == (0, "hi\n")


def test_rounds_take_every_job_once_per_round_in_order():
    calls = []
    jobs = {key: (lambda k=key: calls.append(k) or len(calls)) for key in ("a", "b")}
    assert in_rounds(jobs, 2) == {"a": [1, 3], "b": [2, 4]}
    assert calls == ["a", "b", "a", "b"]
    assert in_rounds(jobs, 0) == {"a": [5], "b": [6]}  # at least one round
