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


def _run_trials(root: Path, runs: dict, timeout: float = 240.0, env: dict | None = None) -> dict:
    """Write run.yaml per name under `root`, run the workers side by side, return name -> trial dir.

    A worker still running after `timeout` is killed and the test fails: a trap must never hang.
    """
    import signal
    import time

    import yaml

    from pai_sweep.spawn import spawn_worker

    env = {
        "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")]),
        "OMP_NUM_THREADS": "1",  # workers side by side on few cores: torch's threads would fight each other
        **(env or {}),
    }
    procs, dirs = {}, {}
    for name, run in runs.items():
        folder = Path(root) / name
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "run.yaml").write_text(yaml.safe_dump(run))
        procs[name], dirs[name] = spawn_worker(folder, env=env), folder
    deadline = time.monotonic() + timeout
    hung = []
    for name, proc in procs.items():
        try:
            proc.wait(timeout=max(1.0, deadline - time.monotonic()))
        except Exception:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            hung.append(name)
    assert not hung, f"workers hung (killed after {timeout} s): {hung}"
    return dirs


@pytest.fixture(scope="session")
def run_trials():
    """run_trials(root, {name: run.yaml dict}) -> {name: trial dir}: real workers in subprocesses, in parallel."""
    return _run_trials


@pytest.fixture(scope="session")
def _session_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("xdg_cache")


@pytest.fixture
def xdg_cache(_session_cache, monkeypatch) -> Path:
    """XDG_CACHE_HOME in a folder shared by the session (here and in subprocesses): data=mnist1d is generated
    once per session and never lands in the user's own cache. Returns the pai-sweep cache folder."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(_session_cache))
    return _session_cache / "pai-sweep"


@pytest.fixture
def kept(tmp_path, monkeypatch):
    """This test process uses a kept warm server (launcher.keep_warm; a socket folder of its own) instead of the
    per-command forkserver; the test must have forked from it (its log says so); stopped at the end."""
    from pai_sweep.launchers import warm, warm_client
    from pai_sweep.launchers.processes import pid_alive, wait_gone

    monkeypatch.setenv(warm_client.DIR_ENV, str(tmp_path / "sockets"))
    monkeypatch.setattr(warm, "_keep_s", 60)
    monkeypatch.setattr(warm, "_kept", None)
    warm.prestart()
    path = warm._kept
    assert path is not None
    yield path
    assert warm._kept == path, "the kept server stayed in use (no fallback to the forkserver)"
    assert "forked" in path.with_suffix(".log").read_text()
    monkeypatch.setattr(warm, "_kept", None)
    pid = warm_client.stop(path)
    assert pid is not None
    wait_gone([pid], 30)
    assert not pid_alive(pid), "the kept server exits when asked"
