"""RunHistory: one PerforatedAI run as tidy pandas tables, plus the few facts derived from them."""

from __future__ import annotations

import math
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
    anchors:   (final-history epoch, real epoch) where each stretch of the final history began (timeline.replay);
               `loop_epoch` turns a final-history epoch into the training loop's

    Epochs are numbered as the training loop counts them (metrics.jsonl `epoch`, MLflow's step, Optuna's
    intermediate values: 0 is the first epoch run, discarded ones included) wherever a finding or the report
    names one; `scores`, `switches`, `lr` keep PerforatedAI's renumbered final-history epochs (docs/analysis.md).
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
    anchors: list[tuple[int, int]] = field(default_factory=lambda: [(0, 0)])

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

    def loop_epoch(self, pai_epoch: int) -> int | None:
        """The training loop's epoch (metrics.jsonl, MLflow step) at which PerforatedAI's final-history epoch
        `pai_epoch` was run; None when it cannot be placed.

        From the snapshot replay's anchors; with metrics.jsonl the score must also be the one the loop recorded
        there, else the first later epoch that recorded it (a rollback the snapshots do not show, such as
        the learning-rate search's) and None when no epoch did."""
        p = int(pai_epoch)
        if p < 0 or (not self.scores.empty and p >= len(self.scores)):
            return None
        start, real = next(a for a in reversed(self.anchors) if a[0] <= p)
        q = real + (p - start)
        if self.metrics.empty or "val" not in self.metrics or self.scores.empty:
            return q
        want = float(self.scores["val"].iloc[p])
        loop = self._loop_scores()
        for epoch, val in loop[loop[:, 0] >= q]:
            if math.isclose(val, want, rel_tol=1e-6, abs_tol=1e-9):
                return int(epoch)
        return None

    def _loop_scores(self) -> Any:
        """metrics.jsonl's (epoch, val) as one array, built once: loop_epoch runs for every epoch of a plot."""
        cached = self.__dict__.get("_loop_scores_array")
        if cached is None or cached[0] is not self.metrics:
            cached = (self.metrics, self.metrics[["epoch", "val"]].to_numpy(dtype=float))
            self.__dict__["_loop_scores_array"] = cached
        return cached[1]

    def switch_loop_epoch(self, pai_epoch: int) -> int | None:
        """The training loop's epoch at which the model got the dendrites of the final history's switch after
        `pai_epoch` (PerforatedAI's switch epoch is the last one of the old architecture it kept, not the one it
        restructured at): the epoch before the new architecture's first kept one."""
        after = self.loop_epoch(int(pai_epoch) + 1)
        return None if after is None else after - 1

    def extra_name(self, kind: str) -> str | None:
        """The extra score named like kind ("train", "test"), case-insensitive, or None."""
        for name in self.extras:
            if kind in name.lower():
                return name
        return None
