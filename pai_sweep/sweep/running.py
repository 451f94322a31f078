"""A trial the loop has launched (or found finished on resume) and not told yet, and what it came to (`Outcome`,
made by sweep/evaluate.py, and the user attrs it gives the trial)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from pai_sweep.launchers.base import TrialJob
from pai_sweep.trial_files import TrialResult


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


@dataclass
class Outcome:
    state: TrialState
    reason: str
    result: TrialResult | None = None
    values: list[float] | None = None
    constraints: dict[str, float] = field(default_factory=dict)
    attrs: dict[str, Any] = field(default_factory=dict)
    history: Any = None
    findings: list[Any] = field(default_factory=list)
    choice: Any = None
    context: Any = None  # the analysis' RuleContext (noise model inputs, direction)
    unwritten: OSError | None = None  # the trial folder refused analysis.json (disk full, read-only): the driver stops


def describe(outcome: Outcome) -> dict[str, Any]:
    """The user attrs every finished trial carries."""
    r = outcome.result
    attrs: dict[str, Any] = {"status": outcome.state.name.lower(), "reason": outcome.reason}
    if r is not None:
        attrs.update(best_val=r.best_val, best_test=r.best_test, dendrites=r.dendrites, n_params=r.params, epochs=r.epochs, seconds=r.seconds,
                     cpu_seconds=(r.extra or {}).get("cpu_seconds"))
    attrs.update(outcome.attrs)
    if outcome.choice is not None:
        attrs.update(chosen_val=getattr(outcome.choice, "val", None), chosen_test=getattr(outcome.choice, "test", None),
                     chosen_params=getattr(outcome.choice, "params", None))
    return json.loads(json.dumps(attrs, default=lambda o: o.item() if hasattr(o, "item") else str(o)))
