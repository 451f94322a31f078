"""Start the worker process for one trial folder. A leaf module: launchers, `pai-sweep run` and the capacity
test start workers through it without importing the worker (or what the worker imports)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from pai_sweep.trial_files import WORKER_LOG

# Names (comma-separated) of variables the driver set in its environment for its own use (tracking's MLflow HTTP
# settings): a worker's environment leaves them out, so a train_fn of the user's never inherits them.
DRIVER_ONLY_ENV = "PAI_SWEEP_DRIVER_ONLY_ENV"
WORKER_MODULE = "pai_sweep.worker"  # the worker process's entry: `python -m pai_sweep.worker TRIAL_DIR`


def worker_environ(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment a worker starts with: this process's plus `extra`, without the driver's own variables."""
    env = {**os.environ, **(extra or {})}
    for key in [*env.get(DRIVER_ONLY_ENV, "").split(","), DRIVER_ONLY_ENV]:
        env.pop(key, None)
    return env


def spawn_worker(
    trial_dir: str | Path,
    env: dict[str, str] | None = None,
    log_path: str | Path | None = None,
    extra_args: list[str] | tuple[str, ...] = (),
) -> subprocess.Popen:
    """Start the worker for a trial folder: stdin closed, cwd = the folder, output to worker.log.

    It runs in its own process group, so `os.killpg(proc.pid, signal.SIGTERM)` stops it with
    any children. `env` entries are added to (not replacing) the current environment.
    """
    trial_dir = Path(trial_dir).resolve()
    log_path = Path(log_path) if log_path is not None else trial_dir / WORKER_LOG
    full_env = worker_environ({"PYTHONUNBUFFERED": "1", "MPLBACKEND": "Agg", **(env or {})})
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", WORKER_MODULE, str(trial_dir), *extra_args],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=trial_dir,
            env=full_env,
            start_new_session=True,
        )
