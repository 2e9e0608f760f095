"""Issue 9, flow semantics: lost replies are counted, round trips start at the
first request of a transaction."""

from __future__ import annotations

import numpy as np

from sim.analysis import summarize
from sim.engine import simulate
from sim.spec.load import load_scenario


def test_replies_lost_for_want_of_a_route_back_are_the_flows_drops(article_path) -> None:
    """The README's "no route back" case reported 0 drops: every reply was lost."""
    flow = {"name": "rr", "kind": "request-response", "src": "web", "dst": "intranet"}
    over = {"flows": [flow], "external_hosts.intranet.return_route_to_pods": False}
    res = simulate(load_scenario(article_path, over))
    f = summarize(res)["flows"]["rr"]
    replies = f["replies"]
    assert f["dropped"] == 0 and f["delivered"] > 0  # the requests all arrive
    assert replies["sent"] == replies["dropped"] > 0 and replies["delivered"] == 0
    (reason, n), *_ = [(r, n) for r, n in f["drops_by_reason"].items() if r.startswith("reply: ")]
    assert "no route" in reason and n == replies["dropped"]
    # and every reply of the window is accounted for
    assert replies["sent"] == replies["delivered"] + replies["dropped"] + replies["in_flight"]


def test_lost_acks_of_a_bulk_flow_are_counted(article_path) -> None:
    flow = {"name": "b", "kind": "bulk", "src": "web", "dst": "intranet", "window_packets": 4}
    over = {"flows": [flow], "external_hosts.intranet.return_route_to_pods": False}
    f = summarize(simulate(load_scenario(article_path, over)))["flows"]["b"]
    assert f["replies"]["dropped"] > 0
    assert (
        sum(n for r, n in f["drops_by_reason"].items() if r.startswith("reply: "))
        == (f["replies"]["dropped"])
    )


def test_round_trip_after_a_loss_includes_the_timeout(article_path) -> None:
    """Two requests leave at once into a one-packet buffer: the second is lost and
    resent after rto_us. Its transaction's round trip is rto + the uncongested trip
    (it was timed from the resent request, hiding the wait)."""
    rto_us = 500.0
    flow = {
        "name": "rr",
        "kind": "request-response",
        "src": "client",
        "dst": "api",
        "outstanding": 2,
        "rto_us": rto_us,
    }
    over = {
        "flows": [flow],
        "costs.veth.buffer_packets": 1,
        "simulation.warmup_s": 0.0,
        "simulation.duration_s": 0.003,
    }
    res = simulate(load_scenario(article_path, over))
    rtt_us = np.asarray(res.flows[0].rtt_s) * 1e6
    base_us = rtt_us.min()
    reasons = np.asarray(res.packets["reason"])
    assert int((reasons > 0).sum()) >= 1
    # the first completion of the second slot: sent at 0, lost, resent at rto
    late = rtt_us[rtt_us > rto_us]
    assert late.size >= 1
    assert abs(late[0] - (rto_us + base_us)) < 1e-6
    # every loss delays exactly one transaction by at least rto
    assert late.size <= int((reasons > 0).sum())
