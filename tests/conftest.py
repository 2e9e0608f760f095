"""Shared fixtures: the shipped scenario files and a quick cluster builder."""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path

import pytest

SCENARIOS = Path(__file__).resolve().parents[1] / "experiments" / "scenarios"

#: Tests that take most of the suite's time (subprocess batches, Dask clusters,
#: signal trials, the real kernel), measured on 2 cores: ``-m "not slow"`` leaves
#: them out for a quick check; CI runs everything. Module paths, or module::test.
SLOW = (
    "testbed/",
    "test_dask_batch.py",
    "test_batch_signals.py",
    "test_shipped_experiments.py",
    "test_batch_worker_death.py",
    "test_batch_crn.py",
    "validate/test_tcp_fit.py",
    "test_batch_dirs.py::test_second_writer_and_force_during_a_live_run",
    "test_batch_dirs.py::test_full_disk",
    "test_batch_run.py::test_plot_redraws_from_stored_results",
    "test_batch_run.py::test_plot_on_empty_dir_exits_2",
    "test_batch_resume.py::test_sigkill_then_resume",
    "test_engine_compiled.py::test_shipped_experiment_quick_runs_identical",
    "test_engine_compiled_cpu.py::test_cpu_saturation_over_several_slices_runs_identical",
    "test_engine_cli.py::test_bench_json_keys",
    "test_plots_sweep.py::test_draw_all_writes_a_file_per_view_named_after_x",
    # over ~3 s each on a quiet 2-core machine (measured with --durations under load 8-11,
    # where they took 9-80 s): the quick subset keeps one theory check of each kind
    "fuzz/test_fuzz_inputs.py::test_fuzz_scenarios_and_command_lines",
    "fuzz/test_fuzz_results.py",  # 100 damaged directories, half drawn (6 min under load)
    "test_cli_signals.py::test_plot_",  # these draw figures of a batch run first
    "test_cli_signals.py::test_report_",
    "test_batch_plot_damaged.py::test_no_positive_delay_is_drawn_on_a_linear_axis",
    "test_batch_plot_damaged.py::test_damaged_quantiles_are_one_line",
    "test_batch_run.py::test_writes_every_results_file",  # these share the headline's
    "test_batch_run.py::test_manifest",  # --quick batch in a subprocess (51 s loaded)
    "test_batch_run.py::test_parquet_and_csv_hold_the_same_runs",
    "test_batch_run.py::test_every_plot_as_png_and_svg",
    "test_batch_run.py::test_cdf_lines_are_the_quantiles_averaged_over_replications",
    # over 3 s on a quiet 2-core machine (measured 2026-12-02, load 1.1)
    "test_engine_compiled.py::test_run_engine_auto_says_compiled_and_matches_simpy",
    "test_engine_cpu.py::test_core_work_is_conserved_mg1_unfinished_work[1-0.7]",
    "test_batch_errors.py::test_failed_run_is_reported_and_the_others_stored",
    "test_batch_tables.py::test_figures_never_import_the_batch_package",
    "test_batch_run.py::test_cross_node_latency_above_same_node",
    "test_batch_run.py::test_summary_ci_is_t_interval_of_runs",
    "test_engine_latency_load.py::test_latency_grows_without_bound_as_load_approaches_one",
    "test_engine_latency_load.py::test_cross_node_is_slower_than_same_node_at_every_load",
    "test_engine_latency_load.py::test_overload_with_unlimited_buffers_latency_grows",
    "test_engine_cli.py::test_same_seed_gives_byte_identical_json",
    "test_engine_cli.py::test_zero_rate_in_a_subprocess_exits_2_without_traceback",
    "test_engine_queueing.py::test_mm1_mean_sojourn[0.8-0.6-0.07]",
    "test_engine_queueing.py::test_mm1k_blocking_probability[1.2]",
    "test_engine_queueing.py::test_md1_mean_wait_pollaczek_khinchine[0.8-0.4]",
    "test_engine_cpu.py::test_one_segment_sojourn_is_pollaczek_khinchine",
    "test_engine_cpu.py::test_realtime_thread_preempts_normal_work_preemptive_priority_mg1",
    "test_engine_compiled.py::test_bench_reports_both_engines",
    "test_tcp_rr.py::test_n_connections_match_mean_value_analysis[4]",
    "test_tcp_rr.py::test_n_connections_match_mean_value_analysis[8]",
    "test_tcp_series.py::test_batch_writes_the_series_table_its_figure_and_report",
    "test_batch_errors.py::test_bad_experiment_subprocess",
    "test_batch_resume.py::test_second_run_into_same_dir_is_refused",
    "test_bad_input.py::test_bench_runs_without_the_source_tree",
    # the report's tests share one rendered report (7 figures, ~20 s under load)
    "test_report_html.py::test_every_figure_is_embedded",
    "test_report_html.py::test_nothing_refers_to_the_network",
    "test_report_html.py::test_summary_table_numbers_are_summary_csv",
    "test_report_html.py::test_stations_table_and_manifest",
    "test_report_html.py::test_report_renders_in_a_headless_browser",
    "test_tcp_theory.py::test_one_flow_fills_a_bottleneck_buffered_by_one_bdp",
    "test_tcp_theory.py::test_four_flows_share_a_bottleneck_fairly",
    "test_tcp_theory.py::test_newreno_under_random_loss_follows_mathis",
)


#: The real-kernel replica's tests: they time the kernel, so the README's test
#: command runs them alone (``-m kernel``), after the rest ran on two workers
#: (``-n 2 -m "not kernel"``, pytest-xdist); other load on the cores would be
#: measured with them.
KERNEL = ("testbed/",)


def pytest_collection_modifyitems(config, items) -> None:
    """Mark the tests listed in :data:`SLOW` with ``slow``, and :data:`KERNEL`'s with ``kernel``."""
    for item in items:
        rel = item.nodeid.removeprefix("tests/")
        if rel.startswith(SLOW):
            item.add_marker(pytest.mark.slow)
        if rel.startswith(KERNEL):
            item.add_marker(pytest.mark.kernel)


@pytest.fixture(scope="session")
def article_path() -> Path:
    """The article's two-node scenario (never modified by tests)."""
    return SCENARIOS / "article.toml"


@pytest.fixture(scope="session")
def docker_path() -> Path:
    """The docker-default scenario (never modified by tests)."""
    return SCENARIOS / "docker-default.toml"


@pytest.fixture(scope="session")
def _article_raw(article_path: Path) -> dict:
    return tomllib.loads(article_path.read_text(encoding="utf-8"))


@pytest.fixture
def article_raw(_article_raw: dict) -> dict:
    """A fresh, mutable copy of article.toml as a dict."""
    return copy.deepcopy(_article_raw)


@pytest.fixture
def build():
    """``build(raw, overrides=None)``: validate a raw dict and build its cluster."""
    from sim.control import build_cluster
    from sim.spec.load import scenario_from_dict

    def _build(raw: dict, overrides: dict | None = None, file: str = "variant.toml"):
        return build_cluster(scenario_from_dict(raw, file, overrides), file)

    return _build
