"""An experiment's own trace flow finds its CSV relative to the experiment file."""

from pathlib import Path

from sim.batch import load_experiment

ARTICLE = Path(__file__).resolve().parent.parent / "experiments" / "scenarios" / "article.toml"


def test_relative_trace_file_of_an_experiment_flow(tmp_path: Path):
    (tmp_path / "t.csv").write_text("time_s,size_bytes,src,dst\n0.0001,1500,client,web\n")
    exp = tmp_path / "e.toml"
    exp.write_text(
        f'name = "t"\nscenario = "{ARTICLE.as_posix()}"\nreplications = 1\n'
        "duration_s = 0.001\nwarmup_s = 0.0\nreplace_flows = true\n"
        '[[flows]]\nname = "replay"\nkind = "trace"\ntrace_file = "t.csv"\n'
    )
    batch = load_experiment(exp)
    flows = batch.runs[0].scenario_raw["flows"]
    assert flows[0]["trace_file"] == str((tmp_path / "t.csv").resolve())
