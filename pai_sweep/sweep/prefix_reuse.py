"""Sampler trials that reuse a front trial's neuron phase (sweep.prefix_reuse, docs/sweeps.md).

After the sampler's start-up, a share of its trials take every searched key that acts before the
first switch (the architecture, the learning rate, the switch timing: branching.py decides which)
from a trial on the study's front that kept a branch point, and let the sampler choose only the
knobs that act at or after the switch (max_dendrites, the initialisation, ...). Such a trial
branches: it trains only from that trial's switch on, at about half the cost, and explores the
dendrite knobs where the architecture is already good.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any, Sequence

import optuna
from optuna.trial import FrozenTrial, TrialState

from pai_sweep import branching
from pai_sweep.search_space import SearchSpace
from pai_sweep.sweep.study import SAMPLER, dominates, origin

PREFIX_OF = "prefix_of"  # user attr: the front trial whose pre-switch params a sampler trial took


def pre_switch_keys(space: SearchSpace) -> list[str]:
    """The searched keys that act before the first switch (all but the post-switch knobs and the epoch cap)."""
    return branching.pre_switch_keys(space.keys)


def _front(trials: Sequence[FrozenTrial], directions: Sequence[optuna.study.StudyDirection]) -> list[FrozenTrial]:
    """Finished trials no other finished trial beats (trials at the same point are all on it)."""
    done = [t for t in trials if t.state == TrialState.COMPLETE and t.values is not None]
    return [t for t in done if not any(o.values != t.values and dominates(o.values, t.values, directions) for o in done)]


def fixed_prefix(trials: Sequence[FrozenTrial], directions: Sequence[optuna.study.StudyDirection], space: SearchSpace,
                 share: float, startup: int, rng: random.Random) -> tuple[dict[str, Any], int] | None:
    """The stored (Optuna-encoded) pre-switch params of a front trial with a branch point, for the next sampler
    trial to fix, and that trial's number; None when this trial samples everything (start-up, the draw, no parent)."""
    sampled = [t for t in trials if origin(t) == SAMPLER]
    if share <= 0 or len([t for t in sampled if t.state.is_finished()]) < startup or rng.random() >= share:
        return None
    keys = pre_switch_keys(space)
    if not keys or len(keys) == len(space.keys):
        return None  # nothing acts only after the switch: a reused prefix would repeat its parent exactly
    parents = [t for t in _front(trials, directions)
               if t.user_attrs.get("trial_dir") and branching.branch_info(Path(t.user_attrs["trial_dir"]) / branching.BRANCH_DIR)]
    if not parents:
        return None
    parent = rng.choice(sorted(parents, key=lambda t: t.number))
    return {k: parent.params[k] for k in keys if k in parent.params}, parent.number  # a conditional key may be absent
