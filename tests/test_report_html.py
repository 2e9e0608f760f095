"""``podnetsim report``: one self-contained HTML file (issue 10).

Parsed with the standard library's HTML parser: every figure is embedded as a
``data:`` URI, nothing refers to the network, and every number in the summary
table is summary.csv's, formatted by the rule the report states (4 significant
digits, ``mean ± ci95``). Where a headless Chromium is installed the file is also
rendered to a PNG.
"""

from __future__ import annotations

import base64
import math
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from contract_results import write_results

from sim.cli.main import cli
from sim.plots.results import read_results
from sim.plots.views import default_views


class _Page(HTMLParser):
    """Everything the tests look at: tags and attributes, images, table cells, texts."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.tables: dict[str, list[list[tuple[str | None, str]]]] = {}
        self.texts: dict[str, str] = {}
        self._table = self._cell = self._id = None

    def handle_starttag(self, tag, attrs) -> None:
        a = dict(attrs)
        self.tags.append((tag, a))
        if tag == "table":
            self._table = a.get("id")
            self.tables[self._table] = []
        elif tag == "tr" and self._table:
            self.tables[self._table].append([])
        elif tag in ("td", "th") and self._table:
            self._cell = [a.get("data-metric"), ""]
        if "id" in a and tag in ("p", "pre"):
            self._id = a["id"]
            self.texts[self._id] = ""

    def handle_endtag(self, tag) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.tables[self._table][-1].append(tuple(self._cell))
            self._cell = None
        elif tag == "table":
            self._table = None
        elif tag in ("p", "pre"):
            self._id = None

    def handle_data(self, data) -> None:
        if self._cell is not None:
            self._cell[1] += data
        if self._id is not None:
            self.texts[self._id] += data


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> Path:
    return write_results(tmp_path_factory.mktemp("rep") / "res")


@pytest.fixture(scope="module")
def html_file(results, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("html") / "report.html"
    res = CliRunner().invoke(cli, ["report", str(results), "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert res.stdout.strip() == str(out)
    return out


@pytest.fixture(scope="module")
def page(html_file) -> _Page:
    p = _Page()
    p.feed(html_file.read_text(encoding="utf-8"))
    return p


def test_every_figure_is_embedded(results, page) -> None:
    expected = {v.stem for v in default_views(read_results(results))} | {"station-breakdown"}
    figures = {a["id"].removeprefix("fig-") for t, a in page.tags if t == "figure"}
    assert figures == expected
    images = [a["src"] for t, a in page.tags if t == "img"]
    assert len(images) == len(expected)
    for src in images:
        head, _, data = src.partition(",")
        assert head == "data:image/png;base64"
        assert base64.b64decode(data).startswith(b"\x89PNG\r\n\x1a\n")


def test_nothing_refers_to_the_network(html_file, page) -> None:
    text = html_file.read_text(encoding="utf-8")
    for scheme in ("http://", "https://", "file://", "ftp://"):
        assert scheme not in text
    for tag, attrs in page.tags:
        assert tag not in ("link", "script", "iframe", "object", "embed"), tag
        for name in ("src", "href", "srcset", "data", "action"):
            if name in attrs:
                assert attrs[name].startswith("data:"), (tag, name, attrs[name][:40])


def _rule(v: float) -> str:
    """The report's stated rule: 4 significant digits, an en dash for no value."""
    return "–" if math.isnan(v) else f"{v:.4g}"


def test_summary_table_numbers_are_summary_csv(results, page) -> None:
    summary = pd.read_csv(results / "summary.csv")
    rows = page.tables["summary"]
    header = [text for _, text in rows[0]]
    body = rows[1:]
    assert len(body) == len(summary)
    assert header[:5] == ["config", "placement", "flows.probe.rate_gbps", "flow", "role"]
    checked = 0
    for cells, (_, want) in zip(body, summary.iterrows(), strict=True):
        key = dict(zip(header, (t for _, t in cells), strict=True))
        assert (int(key["config"]), key["flow"]) == (want["config"], want["flow"])
        for metric, text in cells:
            if metric is None:
                continue
            mean, ci = float(want[f"{metric}.mean"]), float(want[f"{metric}.ci95"])
            expected = (
                _rule(mean)
                if math.isnan(ci) or math.isnan(mean)
                else (f"{_rule(mean)} ± {_rule(ci)}")
            )
            assert text == expected, (key, metric)
            checked += 1
    shown = {m for cells in body for m, _ in cells if m}
    assert {"throughput_gbps", "latency_mean_us", "rtt_mean_us", "drop_rate"} <= shown
    assert checked == len(body) * len(shown)


def test_stations_table_and_manifest(results, page) -> None:
    rows = page.tables["stations"]
    header = [t for _, t in rows[0]]
    assert "station_kind" in header
    kinds = {dict(zip(header, (t for _, t in r), strict=True))["station_kind"] for r in rows[1:]}
    assert kinds == {"veth", "bridge", "forward", "nic_tx", "gateway", "nic_rx"}
    manifest = page.texts["manifest"]
    for fact in ("git_commit", "cd" * 32, "ab" * 32, '"engine": "simpy"', "base_seed"):
        assert fact in manifest
    # text from the experiment file is shown as text, not markup
    assert page.texts["question"] == "Does a <bulk> neighbour slow the probe & by how much?"
    assert not any(t == "bulk" for t, _ in page.tags)


def test_report_errors_are_one_line(results, tmp_path) -> None:
    cases = [
        ([str(tmp_path)], "no results"),
        ([str(results), "-o", str(tmp_path / "missing" / "r.html")], "cannot write"),
        ([str(results), "-o", str(tmp_path)], "is a directory"),
    ]
    for args, words in cases:
        res = CliRunner().invoke(cli, ["report", *args])
        assert res.exit_code == 2, res.output
        lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
        assert len(lines) == 1 and words in lines[0] and "Fix:" in lines[0], res.stderr


BROWSERS = ("chromium", "chromium-browser", "google-chrome", "chrome-headless-shell")


def test_report_renders_in_a_headless_browser(html_file, tmp_path) -> None:
    """Render the report to a PNG; the page has content from top to bottom."""
    browser = next((shutil.which(b) for b in BROWSERS if shutil.which(b)), None)
    if browser is None:
        pytest.skip("no headless Chromium installed (apt-get install chromium): cannot render")
    from PIL import Image

    shot = tmp_path / "report.png"
    subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         "--window-size=1280,4000", f"--screenshot={shot}", html_file.as_uri()],
        capture_output=True, timeout=180, check=True,
    )  # fmt: skip
    img = np.asarray(Image.open(shot).convert("L"), dtype=float)
    assert img.shape == (4000, 1280)
    # every 500-pixel band of the page's first 4000 pixels holds drawn content
    for top in range(0, 4000, 500):
        assert (img[top : top + 500] < 128).mean() > 0.002, top
