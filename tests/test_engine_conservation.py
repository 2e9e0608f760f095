"""Little's law at every station, and packet conservation, on the article's cluster.

Both are sample-path identities, so the checks are exact up to bounded edge
effects that are computed from the run itself (see each test).
"""

from __future__ import annotations

import numpy as np
import pytest

from sim.analysis import summarize
from sim.engine import simulate
from sim.spec.load import scenario_from_dict


def number_in_system(arrive: np.ndarray, depart: np.ndarray):
    """Step function N(t) of a station from its per-packet arrival/departure times.

    Returns ``(t, n)``: N(t) = n[i] on [t[i], t[i+1]). At equal times departures
    come first, as in the station (a packet leaving at ``now`` is gone when one
    arriving at ``now`` looks at the buffer).
    """
    times = np.concatenate([arrive, depart])
    delta = np.concatenate([np.ones(arrive.size), -np.ones(depart.size)])
    order = np.lexsort((delta, times))
    return times[order], np.cumsum(delta[order]), delta[order]


def integrate(t: np.ndarray, n: np.ndarray, t0: float, t1: float) -> float:
    """Integral of the step function over [t0, t1]."""
    edges = np.clip(np.append(t, np.inf), t0, t1)
    return float(np.sum(n * np.diff(edges)))


def value_at(t: np.ndarray, n: np.ndarray, at: float) -> int:
    """N(at) (right-continuous)."""
    i = np.searchsorted(t, at, side="right") - 1
    return int(n[i]) if i >= 0 else 0


# -- Little's law ------------------------------------------------------------------------


def test_little_law_at_every_station(article_raw) -> None:
    """L (time average of N(t)) = lambda * W at every station of a cross-node run.

    * L_int integrates the number-in-system step function, built from the per-hop
      records, over the window [t0, t1].
    * lambda * W = (sum of sojourns of packets arriving in the window) / window,
      from the same records; the summary's ``mean_in_system`` is defined so (from the
      stations' own counters), so the two must agree to rounding.
    * Finite-window Little: the two differ only by the parts of sojourns that cross
      t0 or t1, so |L_int - lambda W| <= (N(t0) + N(t1)) * max sojourn / window.
    """
    article_raw["flows"].append(
        {"name": "rr", "kind": "request-response", "src": "client", "dst": "api",
         "outstanding": 4, "size_bytes": 200, "reply_bytes": 1000}
    )  # fmt: skip
    article_raw["flows"][1]["load"] = 0.8  # cross-node api -> web
    article_raw["flows"][0]["size_bytes"] = "imix"
    scn = scenario_from_dict(article_raw, "article.toml")
    res = simulate(scn, seed=3, duration_s=0.03, warmup_s=0.005, record_hops=True)
    sm = summarize(res)
    t0, t1 = res.warmup_s, res.duration_s
    window = t1 - t0
    h = res.hops
    assert h is not None
    checked = 0
    for idx, st in enumerate(res.stations):
        mine = h["station"] == idx
        a, s, d = h["arrive_s"][mine], h["start_s"][mine], h["depart_s"][mine]
        assert np.all(a <= s) and np.all(s < d)
        in_win = (a >= t0) & (a < t1)
        # the records and the station's counters see the same packets
        assert int(in_win.sum()) == st.arrivals
        t, n, delta = number_in_system(a, d)
        l_int = integrate(t, n, t0, t1) / window
        lam_w = float(np.sum(d[in_win] - a[in_win])) / window
        s_sm = sm["stations"][st.name]
        assert s_sm["mean_in_system"] == pytest.approx(lam_w, rel=1e-9, abs=1e-12)
        assert s_sm["arrivals"] == int(in_win.sum())
        lam = in_win.sum() / window
        w = float(np.mean(d[in_win] - a[in_win]))
        assert lam * w == pytest.approx(lam_w, rel=1e-12)
        bound = (value_at(t, n, t0) + value_at(t, n, t1)) * float(np.max(d - a)) / window
        assert abs(l_int - lam_w) <= bound + 1e-12, (st.name, l_int, lam_w, bound)
        assert abs(l_int - s_sm["mean_in_system"]) <= bound + 1e-12
        # the edge terms are small next to L here: the law is not satisfied vacuously
        assert bound <= 0.02 * max(l_int, 0.05), (st.name, bound, l_int)
        # number in system at the end, and the maximum seen by an arriving packet
        assert st.in_system_at_end == value_at(t, n, t1)
        after_arrival = n[(delta > 0) & (t >= t0) & (t < t1)]
        assert st.max_in_system == int(after_arrival.max())
        # waiting-time average and utilization from the records
        assert s_sm["mean_waiting"] == pytest.approx(
            float(np.sum(s[in_win] - a[in_win])) / window, rel=1e-9, abs=1e-12
        )
        assert s_sm["utilization"] == pytest.approx(
            float(np.sum(d[in_win] - s[in_win])) / window, rel=1e-9
        )
        checked += 1
    # both nodes, the gateway, both directions: every station of both paths
    assert checked == len(res.stations)
    names = {s.name for s in res.stations}
    assert names == {n for r in res.route_stations for n in r}
    assert {"node1/eth0:tx", "node2/eth0:tx", "gateway/forward", "node1/cbr0"} <= names
    assert max(s["utilization"] for s in sm["stations"].values()) > 0.7


# -- conservation ------------------------------------------------------------------------


def test_conservation_with_drops_for_every_flow_kind(article_raw) -> None:
    """sent = delivered + dropped + in flight, the in-flight count being independent.

    ``RunResult.in_flight_at_end`` counts pending arrivals in SimPy's event queue
    plus packets whose delivery time lies after the end; here it is checked against
    the per-packet columns. Small buffers force drops on every kind of flow.
    """
    article_raw["flows"] = [
        {"name": "poisson", "kind": "poisson", "src": "client", "dst": "web", "load": 0.9},
        {"name": "onoff", "kind": "onoff", "src": "api", "dst": "web", "rate_pps": 8e5,
         "on_mean_us": 200.0, "off_mean_us": 100.0, "size_bytes": "imix"},
        {"name": "rr", "kind": "request-response", "src": "client", "dst": "api",
         "outstanding": 32, "rto_us": 200.0, "reply_bytes": 1500},
        {"name": "bulk", "kind": "bulk", "src": "api", "dst": "client",
         "window_packets": 64, "rto_us": 300.0},
        {"name": "bulk-same", "kind": "bulk", "src": "web", "dst": "client",
         "window_packets": 64, "rto_us": 300.0},
    ]  # fmt: skip
    overrides = {
        "costs.bridge.buffer_packets": 3,
        "costs.forward.buffer_packets": 4,
        "costs.eth0_tx.buffer_packets": 6,
    }
    scn = scenario_from_dict(article_raw, "article.toml", overrides)
    end = 0.02
    res = simulate(scn, seed=9, duration_s=end, warmup_s=0.002)
    p = res.packets
    send, done, reason = p["send_s"], p["done_s"], p["reason"]
    sent = send <= end
    finished = sent & (done <= end)
    delivered = int((finished & (reason == 0)).sum())
    dropped = int((finished & (reason > 0)).sum())
    assert int(sent.sum()) == delivered + dropped + res.in_flight_at_end
    assert res.in_flight_at_end > 0 and dropped > 0
    # the unfinished packets are exactly those with no outcome yet (or one after the end)
    unfinished = sent & ~(done <= end)
    assert int(unfinished.sum()) == res.in_flight_at_end
    # ... and only replies/acks/retransmissions may be scheduled after the end
    assert np.all(np.isnan(done[~sent]))

    # per flow: drops on every kind, and the closed loops never have more packets
    # alive than their window (a duplicated or lost token would break this)
    route_flow = np.asarray(res.route_flow)[p["route"]]
    sm = summarize(res)
    for fi, st in enumerate(res.flows):
        f = st.flow
        mine = route_flow == fi
        assert int((mine & finished & (reason > 0)).sum()) > 0, f"no drops on {f.name}"
        c = sm["flows"][f.name]
        assert c["sent"] == c["delivered"] + c["dropped"] + c["in_flight"]
        assert c["in_flight"] >= 0 and c["dropped"] > 0
        alive = int((mine & sent & ~(done <= end)).sum())
        if f.kind == "request-response":
            assert alive <= f.outstanding
        elif f.kind == "bulk":
            assert alive <= f.window_packets
    o = sm["overall"]
    assert o["sent"] == o["delivered"] + o["dropped"] + o["in_flight"]
    assert sum(o["drops_by_reason"].values()) == o["dropped"]
    assert all(r.startswith("buffer full at ") for r in o["drops_by_reason"])

    # stations: each drop in the window is a packet whose outcome is that drop
    reason_names = np.asarray(res.reasons, dtype=object)
    for s in res.stations:
        here = (reason_names[reason] == f"buffer full at {s.name}") & finished
        in_win = here & (done >= res.warmup_s)
        assert s.drops == int(in_win.sum()), s.name
