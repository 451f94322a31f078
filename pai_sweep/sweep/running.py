"""A trial the loop has launched (or found finished on resume) and not told yet."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna

from pai_sweep.launchers.base import TrialJob


@dataclass
class Running:
    trial: optuna.trial.Trial
    origin: str
    params: dict[str, Any]
    trial_dir: Path
    job: TrialJob | None  # None: found finished on resume, only needs telling
    started: float = field(default_factory=time.monotonic)
    reported: int = 0  # metrics.jsonl lines already reported to the pruner

    @property
    def number(self) -> int:
        return self.trial.number
