"""The echo probe in-process on 127.0.0.1, and sockperf's report parsed (no root needed)."""

import socket
import threading

from sim.testbed.probe import run_client, run_server
from sim.testbed.timing import parse_sockperf

# Lines of a real `sockperf ping-pong --full-rtt` report (sockperf 3.7).
SOCKPERF_REPORT = """\
sockperf: [Total Run] RunTime=2.003 sec; Warm up time=400 msec; SentMessages=8562
sockperf: ====> avg-rtt=226.480 (std-dev=1884.240)
sockperf: Total 6819 observations; each percentile contains 68.19 observations
sockperf: ---> <MAX> observation = 36076.162
sockperf: ---> percentile 99.999 = 36076.162
sockperf: ---> percentile 99.000 = 11637.069
sockperf: ---> percentile 90.000 =   15.263
sockperf: ---> percentile 50.000 =   12.606
sockperf: ---> percentile 25.000 =   11.859
sockperf: ---> <MIN> observation =    9.148
"""


def test_parse_sockperf_reads_percentiles_and_samples():
    res = parse_sockperf(SOCKPERF_REPORT)
    assert res == {"p50_us": 12.606, "p99_us": 11637.069, "samples": 6819}
    assert parse_sockperf("nothing") == {"p50_us": None, "p99_us": None, "samples": 0}


def test_server_reports_the_source_it_saw():
    ports, ready, out = [], threading.Event(), {}

    def serve():
        out["server"] = run_server(
            "127.0.0.1", 0, timeout_s=3, ready=lambda p: (ports.append(p), ready.set())
        )

    thread = threading.Thread(target=serve)
    thread.start()
    assert ready.wait(5)
    res = run_client("127.0.0.1", ports[0], hello_timeout_s=2.0)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(b"B", ("127.0.0.1", ports[0]))  # bye: the server stops
    thread.join(5)
    assert not thread.is_alive()
    assert res == {"seen_source": "127.0.0.1", "error": None}
    assert out["server"]["reason"] == "bye" and out["server"]["served"] >= 2
    assert out["server"]["peers"] == ["127.0.0.1"]


def test_client_reports_no_reply_and_server_times_out():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    res = run_client("127.0.0.1", port, hello_timeout_s=0.3)
    assert res["seen_source"] is None and "no reply" in res["error"]
    assert run_server("127.0.0.1", 0, timeout_s=0.2)["reason"] == "timeout"
