"""docs/python-api.md: every ```python block runs, in order, in one namespace
(from a copy of the repository's experiments/, so results land in a temporary
directory)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "python-api.md"
BLOCK = re.compile(r"```python\n(.*?)```", re.S)


def blocks() -> list[str]:
    return BLOCK.findall(DOC.read_text(encoding="utf-8"))


def test_the_doc_has_examples() -> None:
    assert len(blocks()) >= 5


@pytest.mark.slow
def test_documented_examples_run(tmp_path, monkeypatch, capsys) -> None:
    shutil.copytree(ROOT / "experiments", tmp_path / "experiments")
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    for i, code in enumerate(blocks()):
        exec(compile(code, f"{DOC.name}[block {i}]", "exec"), namespace)  # noqa: S102
    assert (tmp_path / "results" / "nat-quick" / "runs.parquet").is_file()
    assert "results/nat-quick" in capsys.readouterr().out
