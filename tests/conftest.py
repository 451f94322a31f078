"""Shared test settings: headless plots, no stray MLflow store in the checkout, repo paths."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def repo_root() -> Path:
    return REPO


@pytest.fixture(autouse=True)
def _isolated_cwd(tmp_path, monkeypatch):
    # Every test runs in its own folder: sweeps/, runs/ and mlflow.db never land in the checkout.
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
