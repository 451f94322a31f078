"""The one interface every launcher implements. The driver only ever talks to this.

A launcher runs `python -m pai_sweep.worker TRIAL_DIR` (the worker writes everything into the
trial folder) somewhere, and answers "is it still running?". It never reads results or
writes the study: result.json in the trial folder is the only proof a trial finished.
"""

from __future__ import annotations

import enum
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class JobState(str, enum.Enum):
    PENDING = "pending"  # queued, not started (SLURM)
    RUNNING = "running"
    FINISHED = "finished"  # the process/job ended (read result.json to know how)
    FAILED = "failed"  # the launcher knows it died (scheduler said so, could not start, cancelled)
    LOST = "lost"  # the launcher no longer knows this job (e.g. after a driver restart)


@dataclass
class TrialJob:
    """A handle for one launched trial; `info` is JSON-able and saved to launch.json for re-attaching."""

    trial_number: int
    trial_dir: Path
    info: dict[str, Any] = field(default_factory=dict)  # pid / job_id / node / log paths / device
    reason: str = ""  # filled when the launcher knows why it failed (scheduler reason, log tail)


class Launcher(ABC):
    """Start, poll, cancel. `capacity` is how many trials may run at once."""

    capacity: int = 1

    @abstractmethod
    def submit(self, trial_number: int, trial_dir: Path) -> TrialJob:
        """Start the worker for this trial folder (run.yaml is already written)."""

    @abstractmethod
    def poll(self, job: TrialJob) -> JobState:
        """Cheap status check; may fill job.reason on failure."""

    @abstractmethod
    def cancel(self, job: TrialJob, reason: str = "") -> None:
        """Stop the trial (timeout, pruning, shutdown)."""

    def submit_many(self, trials: list[tuple[int, Path]]) -> list[TrialJob | Exception]:
        """Start trials that are ready at the same moment (a launcher may submit them as one batch,
        e.g. a SLURM job array). One entry per trial, in order: its job, or why it could not start."""
        started: list[TrialJob | Exception] = []
        for number, trial_dir in trials:
            try:
                started.append(self.submit(number, trial_dir))
            except Exception as exc:  # noqa: BLE001 - a trial that cannot start fails alone
                started.append(exc)
        return started

    def wait(self, timeout: float) -> bool:
        """Block until a job may have ended or `timeout` seconds passed; True when one ended (the driver then
        polls at once). This default sleeps; a launcher that can be woken by a job's end (local) overrides it."""
        time.sleep(timeout)
        return False

    def stop_gracefully(self, jobs: list[TrialJob]) -> None:
        """Before cancelling (the sweep stops): ask these trials to finish their epoch and save its resume point,
        so a run again continues from it. This default asks nothing; cancel() follows either way."""

    def reattach(self, trial_number: int, trial_dir: Path) -> TrialJob | None:
        """After a driver restart: a handle to a trial that is still queued/running, else None."""
        return None

    def close(self) -> None:
        """Release resources at the end of the sweep (running trials are cancelled by the driver first)."""
