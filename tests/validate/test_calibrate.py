"""Calibration and comparison on synthetic measurements (no root needed).

The "measurements" are made by the model itself from known elementary costs
and a known endpoint term, so the fit must recover them and ``compare`` must
predict them exactly (its simulation at one outstanding request has no
queueing, so it equals the analytic sum).
"""

import json
import math

import pytest
from click.testing import CliRunner

from sim.cli.testbed_cmds import calibrate as calibrate_cmd
from sim.cli.testbed_cmds import compare as compare_cmd
from sim.control import load_cluster
from sim.errors import UserError
from sim.spec.load import load_scenario
from sim.testbed.mapping import map_cluster
from sim.testbed.render import ELEMENTS
from sim.validate.calibrate import calibrate, fitted_costs, model_rtt_us
from sim.validate.cases import CASE_TITLES, endpoint_pairs, model_outcome, rtt_cases
from sim.validate.compare import compare
from sim.validate.models import Measurements, read_record, write_json
from sim.validate.params import params_overrides, read_params, write_params

IP_BYTES = 60


def _synthetic(path, elements, endpoint_us, overrides=None) -> Measurements:
    cl = load_cluster(path, overrides)
    mapping = map_cluster(cl)
    costs = fitted_costs(cl.scenario.costs, elements)
    rtt = {}
    for case, (src, dst) in rtt_cases(cl).items():
        p50 = endpoint_us + model_rtt_us(cl, src, dst, costs, IP_BYTES)
        rtt[case] = {
            "title": CASE_TITLES[case],
            "src": src,
            "dst": dst,
            "src_ns": "a",
            "dst_ns": "b",
            "dst_addr": "198.18.0.1",
            "ok": True,
            "p50_us": p50,
            "p99_us": p50 * 1.5,
            "spread_p50_us": [p50 * 0.99, p50 * 1.01],
            "samples": 1000,
        }
    pairs = []
    for src, dst in endpoint_pairs(cl):
        mo = model_outcome(cl, src, dst)
        seen = mo.seen_source
        obs = {
            "outcome": mo.outcome,
            "seen_source_scenario": seen,
            "seen_source": None if seen is None else str(mapping.address(seen)),
        }
        pairs.append({"src": src, "dst": dst, "dst_addr": "198.18.0.1", "observed": obs})
    return Measurements.model_validate(
        {
            "scenario": {
                "name": cl.scenario.name,
                "file": str(path),
                "sha256": cl.scenario.digest(),
                "overrides": overrides or {},
            },
            "timing": {"payload_bytes": IP_BYTES - 28},
            "rtt": rtt,
            "pairs": pairs,
        }
    )


PRIOR = {"veth": 0.5, "bridge": 0.6, "lan_bridge": 0.6, "forward": 1.0, "gateway": 1.0, "nat": 0.4}
OTHER = {
    "veth": 0.9,
    "bridge": 0.3,
    "lan_bridge": 0.05,
    "forward": 0.2,
    "gateway": 0.1,
    "nat": 0.15,
}


def test_default_fit_recovers_costs_that_match_the_prior(article_path):
    doc = _synthetic(article_path, PRIOR, 8.0)
    fit = calibrate(load_cluster(article_path), doc)
    assert fit.fit_on == ("localhost", "same_node", "ext_nomasq")
    assert fit.held_out == ("cross_node", "ext_masq")
    assert fit.endpoint_us == pytest.approx(8.0, abs=1e-6)
    for e in ELEMENTS:
        assert fit.elements_us[e] == pytest.approx(PRIOR[e], abs=1e-3)
    for case in fit.cases.values():
        assert case.residual_us == pytest.approx(0.0, abs=1e-3)
    assert "nat" in fit.undetermined  # no masqueraded path was fitted


def test_fit_on_all_reproduces_every_case(article_path):
    doc = _synthetic(article_path, OTHER, 11.0)
    fit = calibrate(load_cluster(article_path), doc, ("all",))
    assert fit.held_out == ()
    for case in fit.cases.values():
        assert case.residual_us == pytest.approx(0.0, abs=5e-3)
    assert fit.elements_us["nat"] == pytest.approx(OTHER["nat"], abs=5e-3)
    assert all(v >= 0 for v in fit.elements_us.values())


def test_endpoint_is_an_unknown_when_localhost_is_not_fitted(article_path):
    doc = _synthetic(article_path, PRIOR, 9.5)
    fit = calibrate(load_cluster(article_path), doc, ("same_node", "cross_node", "ext_nomasq"))
    for case in ("same_node", "cross_node", "ext_nomasq"):
        assert fit.cases[case].residual_us == pytest.approx(0.0, abs=1e-2)
    assert not fit.cases["localhost"].fitted
    # three paths cannot separate the endpoint term from the per-hop costs
    assert any("endpoint" in u for u in fit.undetermined)


def test_bad_fit_sets_are_user_errors(article_path):
    doc = _synthetic(article_path, PRIOR, 8.0)
    cl = load_cluster(article_path)
    with pytest.raises(UserError, match="too few"):
        calibrate(cl, doc, ("localhost",))
    doc.rtt["cross_node"] = doc.rtt["cross_node"].model_copy(update={"ok": False, "p50_us": None})
    with pytest.raises(UserError, match="cross_node.*failed"):
        calibrate(cl, doc, ("localhost", "cross_node"))


def test_params_file_round_trip_and_scenario_overrides(article_path, tmp_path):
    doc = _synthetic(article_path, OTHER, 11.0)
    fit = calibrate(load_cluster(article_path), doc, ("all",))
    out = tmp_path / "params.toml"
    write_params(fit, out, source={"measurements": "m.json"})
    overrides, cal = read_params(out)
    assert cal["endpoint_us"] == pytest.approx(11.0, abs=1e-3)
    assert tuple(cal["fit_on"]) == fit.fit_on
    assert overrides == params_overrides(out)
    scn = load_scenario(article_path, overrides)
    assert scn.costs.veth.per_packet_us == pytest.approx(fit.costs.veth.per_packet_us, 1e-5)
    assert scn.costs.eth0_tx.per_packet_us == pytest.approx(
        2 * fit.elements_us["veth"] + fit.elements_us["lan_bridge"], abs=1e-5
    )
    assert scn.costs.gateway_link.propagation_us == 0.0
    assert scn.costs.loopback == load_scenario(article_path).costs.loopback  # not fitted


def test_compare_predicts_synthetic_measurements_exactly(article_path, tmp_path):
    doc = _synthetic(article_path, OTHER, 11.0)
    fit = calibrate(load_cluster(article_path), doc, ("all",))
    write_params(fit, tmp_path / "p.toml")
    res = compare(str(article_path), doc, str(tmp_path / "p.toml"))
    assert set(res.rtt) == {"localhost", "same_node", "cross_node", "ext_nomasq", "ext_masq"}
    for row in res.rtt.values():
        assert row.ratio == pytest.approx(1.0, abs=2e-3)
        # the simulation at one outstanding request equals the analytic sum
        assert row.simulated_network_p50_us == pytest.approx(row.analytic_network_us, 1e-6)
    assert res.ratio_cross_same.ratio == pytest.approx(1.0, abs=2e-3)
    assert res.verdicts and all(v.agree for v in res.verdicts)
    snat = {(v.src, v.dst): v.model_snat for v in res.verdicts}
    assert snat[("web", "internet")] and not snat[("web", "intranet")]
    assert not snat[("web", "api")]


def test_compare_reports_disagreement(article_path, tmp_path):
    doc = _synthetic(article_path, PRIOR, 8.0)
    write_params(calibrate(load_cluster(article_path), doc), tmp_path / "p.toml")
    for pair in doc.pairs:
        if (pair.src, pair.dst) == ("web", "intranet"):
            pair.observed.seen_source = "198.18.2.2"
            pair.observed.seen_source_scenario = "10.100.0.2"
    res = compare(str(article_path), doc, str(tmp_path / "p.toml"))
    bad = [v for v in res.verdicts if not v.agree]
    assert [(v.src, v.dst) for v in bad] == [("web", "intranet")]
    assert bad[0].observed_snat and not bad[0].model_snat


def test_compare_refuses_another_scenario(article_path, tmp_path):
    doc = _synthetic(article_path, PRIOR, 8.0)
    write_params(calibrate(load_cluster(article_path), doc), tmp_path / "p.toml")
    with pytest.raises(UserError, match="different scenario"):
        compare(
            str(article_path),
            doc,
            str(tmp_path / "p.toml"),
            overrides={"external_hosts.intranet.return_route_to_pods": False},
        )


def test_cli_calibrate_and_compare(article_path, tmp_path):
    doc = _synthetic(article_path, PRIOR, 8.0)
    m = tmp_path / "m.json"
    write_json(doc, m)
    p = tmp_path / "p.toml"
    runner = CliRunner()
    res = runner.invoke(calibrate_cmd, [str(m), "-o", str(p)])
    assert res.exit_code == 0, res.output
    assert "held out" in res.output and p.exists()
    res = runner.invoke(compare_cmd, [str(article_path), str(m), "--params", str(p), "--strict"])
    assert res.exit_code == 0, res.output
    assert "cross-node / same-node RTT" in res.output
    assert "endpoint pairs agree" in res.output
    res = runner.invoke(compare_cmd, [str(article_path), str(m), "--params", str(p), "--json"])
    assert res.exit_code == 0
    out = json.loads(res.output)
    assert math.isclose(out["rtt"]["cross_node"]["ratio"], 1.0, abs_tol=2e-3)


@pytest.mark.parametrize(
    "content, match",
    [
        (None, "file not found"),
        ("{not json", "cannot read measurements"),
        ('{"kind": "something else"}', "not a measurements file"),
        ('{"kind": "podnetsim-testbed-measurements", "schema_version": 1}', "version 1"),
        ('{"kind": "podnetsim-testbed-measurements", "schema_version": 2}', "scenario"),
    ],
)
def test_cli_bad_measurement_files_give_one_line(tmp_path, content, match):
    m = tmp_path / "m.json"
    if content is not None:
        m.write_text(content)
    res = CliRunner().invoke(calibrate_cmd, [str(m)])
    assert res.exit_code == 2
    assert match in res.output
    assert "Traceback" not in res.output and res.output.count("\n") == 1
    with pytest.raises(UserError):
        read_record(m, Measurements)


@pytest.mark.parametrize("where", ["missing/p.toml", "."])
def test_cli_calibrate_output_that_cannot_be_written_is_one_line(article_path, tmp_path, where):
    m = tmp_path / "m.json"
    write_json(_synthetic(article_path, PRIOR, 8.0), m)
    res = CliRunner().invoke(calibrate_cmd, [str(m), "-o", str(tmp_path / where)])
    assert res.exit_code == 2, res.output
    assert "--output: cannot write" in res.output and "Traceback" not in res.output
    assert res.output.count("\n") == 1
    assert [p.name for p in tmp_path.rglob("*")] == ["m.json"]  # no temporary file left


def test_write_json_to_a_device_writes_it_and_leaves_the_device(article_path, tmp_path):
    out = tmp_path / "out"  # like -o /dev/stdout: a link to a device, not a file to replace
    out.symlink_to("/dev/null")
    write_json(_synthetic(article_path, PRIOR, 8.0), out)
    assert out.is_symlink() and out.is_char_device()
    assert [p.name for p in tmp_path.iterdir()] == ["out"]
