"""Schema of the `sweep` and `objective` groups: what the driver searches and optimises."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional


BRANCHING_MODES = ("auto", "first", "off")  # sweep.branching
SIZE_LADDER_MODES = ("auto", "off")  # sweep.size_ladder


@dataclass
class SweepConfig:
    name: str = "default"  # the sweep folder and MLflow experiment are named after it
    dir: str = "sweeps/${sweep.name}"  # running the same command again resumes this folder
    n_trials: int = 8  # total trials (sampler + rule-guided), counted across resumes
    in_flight: int = 2  # trials running at once
    sampler: str = "tpe"  # tpe, random, nsga2, grid
    seed: int = 0
    storage: Optional[str] = None  # Optuna storage URL; None: sqlite in the sweep folder
    guided_share: float = 0.25  # at most this share of n_trials comes from the analysis' recommendations
    rule_trials: bool = True  # enqueue trials the analysis recommends
    derived_trials: bool = True  # add each smaller architecture a run measured as a free trial
    pruner: str = "none"  # none, median (reads metrics.jsonl while a trial runs)
    pruner_warmup: int = 2  # median pruner: epochs a trial always runs before it can be pruned
    pruner_startup: int = 2  # median pruner: finished trials needed before pruning starts
    max_failures: int = 3  # stop the sweep after this many failed trials
    trial_timeout: Optional[float] = None  # seconds before a trial is killed (None: no limit)
    check_first: bool = True  # run `pai-sweep check` once before launching trials
    # auto: a trial sharing another's prefix starts from its kept state (before its first switch, after a later one, at
    # its cap); first: only the state before the first switch is kept (one point per trial: large models); off
    branching: str = "auto"
    # auto: a guided efficiency sweep starts with the model at a few smaller sizes, most dendrites, latest switch
    # (sweep/size_ladder.py); off: the sampler's start-up draws at random
    size_ladder: str = "auto"
    prefix_reuse: float = 0.0  # share of sampler trials (after start-up) that take a front trial's pre-switch params and branch
    space: dict[str, Any] = field(default_factory=dict)  # config key -> distribution (docs/search_space.md)


@dataclass
class ObjectiveConfig:
    name: str = "accuracy"  # accuracy, efficiency, scalar
    metric: str = "val"  # val or test: which score the objective reports
    direction: Optional[str] = None  # maximize/minimize; None: from dendrites.maximizing_score (must agree)
    use_analysis: bool = True  # score at the architecture the analysis picks, penalties from findings
    baseline: bool = False  # efficiency: run the model without dendrites first, as the reference
    tolerance: float = 1.0  # efficiency: score may fall this far below the baseline
    param_weight: float = 0.0  # scalar: score - param_weight * log2(params / base_params)
    # rule id (docs/analysis.md) -> score points taken off when that rule fires for the trial
    penalties: dict[str, float] = field(
        default_factory=lambda: {"dendrites.never_added": 1.0, "stability.unstable_after_switch": 0.5, "generalization.overfitting": 0.5}
    )
