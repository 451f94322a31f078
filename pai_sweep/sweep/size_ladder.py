"""The size ladder: how a guided efficiency sweep starts.

The seed's efficiency workflow is "make the model smaller first, then add dendrites". So before the
sampler draws at random, a guided sweep with objective=efficiency runs the model at a few sizes below the
original (the space's own downsizing values, one step down at a time: the largest first, as a user
shrinks a model), each with the space's most dendrites and its latest switch: one trial then measures a
smaller base model at its plateau (the plain phase, told as a derived point when it plateaued) and what
dendrites add to it. The sampler draws every other knob. The ladder's trials count toward n_trials and
toward TPE's start-up, and a model-based sampler (TPE) learns from them. `sweep.size_ladder=off` starts
with random draws instead.
"""
from __future__ import annotations

import math
from typing import Any

from optuna.distributions import CategoricalDistribution

from pai_sweep.progress import short_params
from pai_sweep.search_space import SearchSpace
from pai_sweep.sweep.study import SAMPLER, startup_trials

DESIGN = "size_ladder"  # the `design` user attr of a ladder trial
SIZE_KEYS = ("downsize.width_mult",)  # downsizing knobs whose values order models by size (1.0: the original)
MAX_DENDRITES = "dendrites.max_dendrites"
SWITCH_PATIENCE = "dendrites.n_epochs_to_switch"


def applies(sweep_cfg: Any, objective_cfg: Any, space: SearchSpace) -> str | None:
    """The size key the ladder climbs, or None: only guided efficiency sweeps (rule and derived trials on, a
    sampler other than grid) whose space searches a size knob below the original."""
    if str(sweep_cfg.get("size_ladder", "auto")) == "off" or objective_cfg.name != "efficiency":
        return None
    if not (sweep_cfg.rule_trials and sweep_cfg.derived_trials) or str(sweep_cfg.get("sampler")) == "grid":
        return None  # unguided; or a grid, which runs every size anyway (the ladder would only repeat points)
    return next((k for k in SIZE_KEYS if k in space and not space.by_key[k].when and _sizes(space, k)), None)


def _sizes(space: SearchSpace, key: str) -> list[float]:
    """The key's values below the original (1.0), smallest first: its grid, or 4 geometric steps of a range (its
    high end among them when it is below 1.0)."""
    dist = space.by_key[key].distribution
    if isinstance(dist, CategoricalDistribution):
        values = [float(v) for v in dist.choices if isinstance(v, (int, float)) and not isinstance(v, bool)]
    elif getattr(dist, "step", None):
        n = int(round((dist.high - dist.low) / dist.step))
        values = [dist.low + i * dist.step for i in range(n + 1)]
    elif dist.low > 0:
        # geometric steps: to the range's top when every size is below the original (its ends are sizes), else
        # towards the original (1.0), which the baseline already measures
        top, steps = (dist.high, 3) if dist.high < 1.0 else (1.0, 4)
        values = [dist.low * (top / dist.low) ** (i / steps) for i in range(4)]
    else:
        values = []
    return sorted({round(v, 10) for v in values if 0 < v < 1.0})


def ladder(sweep_cfg: Any, objective_cfg: Any, space: SearchSpace, rungs: int) -> list[dict[str, Any]]:
    """Params fixed for each ladder trial, the largest model below the original first (a small model can fall
    below what is worth having; the step down from the original rarely does): at most `rungs` sizes spread over
    the range, each with the space's most dendrites and latest switch (where the space searches them as numbers,
    unconditionally; otherwise the sampler draws them)."""
    key = applies(sweep_cfg, objective_cfg, space)
    if key is None or rungs < 1:
        return []
    sizes = _sizes(space, key)
    n = min(len(sizes), rungs)
    picked = sorted({sizes[round(i * (len(sizes) - 1) / (n - 1))] for i in range(n)}, reverse=True) if n > 1 else [sizes[-1]]
    fixed: dict[str, Any] = {}
    for knob in (MAX_DENDRITES, SWITCH_PATIENCE):
        p = space.by_key.get(knob)
        if p is not None and not p.when and not isinstance(p.distribution, CategoricalDistribution):
            fixed[knob] = p.distribution.high
    return [{key: space.fit(key, v), **fixed} for v in picked]


def rungs_for(n_trials: int, startup: int) -> int:
    """Half of TPE's start-up count (at least 1), at most a quarter of the trials. TPE counts every finished trial
    toward its start-up (the baseline and derived trials too), so its random draws are fewer than the other half,
    but the sampler still draws beyond the ladder's corner (most dendrites, latest switch) before it models."""
    return max(1, min(startup // 2, math.ceil(n_trials / 4)))


def enqueue(study: Any, space: SearchSpace, cfg: Any) -> list[dict[str, Any]]:
    """Queue a new sweep's ladder (after its baseline) as sampler trials with user attr design=size_ladder."""
    sweep = cfg.sweep
    rungs = ladder(sweep, cfg.objective, space, rungs_for(int(sweep.n_trials), startup_trials(sweep)))
    for params in rungs:
        study.enqueue_trial(space.encode(params), user_attrs={"origin": SAMPLER, "design": DESIGN})
    return rungs


def describe(rungs: list[dict[str, Any]]) -> str:
    return (f"size ladder: the first {len(rungs)} sampler trial(s) run {'; '.join(short_params(p) for p in rungs)} "
            "(a smaller model's plateau and what dendrites add to it; sweep.size_ladder=off draws them at random)")
