"""The echo probe in-process on 127.0.0.1, and sockperf's report parsed (no root needed)."""

import socket

import pytest

from sim.testbed import ProbeError
from sim.testbed.probe import observe
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
    res = observe(None, [None], "127.0.0.1", port=0, hello_timeout_s=2.0)
    assert res["seen_source"] == "127.0.0.1" and res["error"] is None
    report = res["servers"][None]
    assert report["served"] >= 1 and report["peers"] == ["127.0.0.1"]
    assert report["send_errors"] == 0


def test_client_reports_no_reply_when_nobody_listens():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    res = observe(None, [], "127.0.0.1", port=port, hello_timeout_s=0.3)
    assert res["seen_source"] is None and "no reply" in res["error"] and res["servers"] == {}


def test_a_missing_namespace_is_a_probe_error():
    with pytest.raises(ProbeError, match="no network namespace"):
        observe("pnq-absent-ns", [None], "127.0.0.1", port=0)
