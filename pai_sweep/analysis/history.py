"""RunHistory: one PerforatedAI run as tidy pandas tables, plus the few facts derived from them."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from pai_sweep.analysis.context import RuleContext

# best_arch.status values
KEPT = "kept"  # in the final model's history: PerforatedAI accepted this architecture
REJECTED = "rejected"  # a try PerforatedAI discarded (from a _noImprove_ snapshot)
IN_PROGRESS = "in_progress"  # the last architecture, not (yet) better than the one before when the run stopped


@dataclass
class Snapshot:
    """A copy of the CSVs PerforatedAI made at a switch (before_switch), a rejected try, or before_final."""

    kind: str
    index: int | None
    timestamp: str | None
    scores: pd.DataFrame  # epoch, val, running, <extras>
    best_arch: pd.DataFrame  # params, val, <extras> (one row per architecture, as in the file)
    switch_epochs: list[int]  # raw Switch Epoch column
    param_counts: list[int]
    files: list[str]


@dataclass
class RunHistory:
    """Tables (all tidy; empty DataFrames when a file is missing, see `missing`).

    scores:    epoch, val, running, <extras e.g. Train/Test>, dendrites (architecture of the epoch).
               PerforatedAI's final history: epochs of discarded tries are not in it, epochs renumbered.
    switches:  dendrites (count after the switch), epoch (last epoch of the previous architecture), end_epoch
    params:    dendrites, params
    best_arch: dendrites, params, val, <extras>, accepted (bool), status (kept/rejected/in_progress), source
    lr:        epoch, lr
    times:     epoch, normal_seconds, pai_seconds
    pb_scores: epoch, one column per module id (".0"), best-ever PB correlation scores (empty without PB)
    events:    epoch (real epoch count, including discarded tries), kind (switch/rejected/before_final/end),
               dendrites, params, val
    metrics:   the pai-sweep worker's metrics.jsonl (real epochs), when the folder is a trial folder
    """

    folder: Path
    save_name: str
    format: str  # "3.2.9" or "legacy" (best_test_scores.csv)
    scores: pd.DataFrame
    switches: pd.DataFrame
    params: pd.DataFrame
    best_arch: pd.DataFrame
    lr: pd.DataFrame
    times: pd.DataFrame
    pb_scores: pd.DataFrame
    events: pd.DataFrame
    snapshots: list[Snapshot] = field(default_factory=list)
    metrics: pd.DataFrame = field(default_factory=pd.DataFrame)
    extras: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    trial_dir: Path | None = None
    result: dict[str, Any] | None = None
    run_config: dict[str, Any] | None = None
    pai_config: dict[str, Any] | None = None
    ended_by: str = "unknown"  # pai_complete, tries_exhausted, max_dendrites, capacity_test, epoch_cap, failed, unknown

    # ---- derived facts -------------------------------------------------------------------
    def context(self) -> RuleContext:
        """What the folder itself says about the settings (run.yaml, PerforatedAI's config JSON, result.json)."""
        ctx = RuleContext.from_run_config(self.run_config).merged(RuleContext.from_pai_config(self.pai_config))
        return ctx.merged(RuleContext.from_result(self.result))

    @property
    def accepted(self) -> pd.DataFrame:
        if self.best_arch.empty:
            return self.best_arch
        return self.best_arch[self.best_arch["accepted"]].sort_values("dendrites").reset_index(drop=True)

    @property
    def rejected(self) -> pd.DataFrame:
        if self.best_arch.empty:
            return self.best_arch
        return self.best_arch[self.best_arch["status"] == REJECTED].reset_index(drop=True)

    @property
    def dendrites(self) -> int:
        """Dendrites in the final (best) model: the largest accepted count."""
        acc = self.accepted
        return int(acc["dendrites"].max()) if not acc.empty else 0

    @property
    def switch_epochs(self) -> list[int]:
        return [int(e) for e in self.switches["epoch"]] if not self.switches.empty else []

    @property
    def total_epochs(self) -> int:
        """Epochs really run, counting the ones PerforatedAI discarded with rejected tries and rollbacks."""
        if not self.metrics.empty:
            return len(self.metrics)
        if not self.events.empty:
            return int(self.events["epoch"].max()) + 1
        return len(self.scores)

    def extra_name(self, kind: str) -> str | None:
        """The extra score named like kind ("train", "test"), case-insensitive, or None."""
        for name in self.extras:
            if kind in name.lower():
                return name
        return None
