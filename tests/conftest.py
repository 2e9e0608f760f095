"""Shared fixtures: the shipped scenario files and a quick cluster builder."""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path

import pytest

SCENARIOS = Path(__file__).resolve().parents[1] / "experiments" / "scenarios"


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
