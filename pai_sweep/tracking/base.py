"""The tracker interface the driver calls; this base records nothing (tracking=off)."""

from __future__ import annotations

from pathlib import Path


class Tracker:
    """The interface the driver calls; this base records nothing (tracking=off)."""

    enabled = False
    uri: str | None = None

    def start_sweep(self, config: dict) -> None:
        """Open (or on resume, reopen) the sweep's parent run with the flattened config as params."""

    def log_trial(self, study_trial, trial_dir: Path | None = None) -> None:
        """Log one finished trial as a child run (sampler, rule-enqueued, derived or baseline)."""

    def finish_sweep(self, summary: dict, report_dir: Path | None = None) -> None:
        """Log the sweep summary and report folder to the parent run and close it."""

    def close(self) -> None:
        """Last retry of the backlog; says in one line what is still not logged."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
