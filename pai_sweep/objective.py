"""Turn one trial's analysis into the values told to Optuna (docs/sweeps.md, "Objectives").

Objectives (conf/objective/):
- accuracy:   one value, the score at the architecture the analysis picks, minus penalties.
- efficiency: two values, (score minus penalties) and parameters (minimised); where a
  baseline exists, the constraint score >= baseline - tolerance (Optuna: constraint <= 0 is
  feasible, so the stored number is (baseline - tolerance) - score).
- scalar:     one value, score - param_weight * log2(params / base_params) - penalties, where
  base_params is the baseline's parameter count, else the model's before perforation.
For a minimised metric (dendrites.maximizing_score false: a loss) every sign flips.

Penalties (objective.penalties, rule id -> amount in score units) are charged once per rule
that fired in the trial's findings about the architecture being scored (a finding names the
dendrite counts it concerns). Works on plain inputs: no study, no files.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from pai_sweep.errors import ConfigError, SweepError
from pai_sweep.trial_files import finite

MAXIMIZE, MINIMIZE = "maximize", "minimize"
CONSTRAINT = "score_vs_baseline"  # efficiency: (baseline - tolerance) - score, <= 0 feasible


@dataclass
class Baseline:
    """The plain model's result (dendrites off), the reference for efficiency sweeps."""

    score: float
    params: int | None = None


@dataclass
class ObjectiveValues:
    values: list[float]  # in the order of `directions`
    constraints: dict[str, float] = field(default_factory=dict)  # name -> number, <= 0 feasible (Optuna's convention)
    attrs: dict[str, Any] = field(default_factory=dict)  # the numbers behind the values, for user attrs


def _get(obj: Any, name: str, default: Any = None) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(name, default)
    return getattr(obj, name, default)


def is_maximizing(objective_cfg: Any, maximizing_score: bool) -> bool:
    """Direction of the score: from dendrites.maximizing_score; objective.direction must agree."""
    direction = _get(objective_cfg, "direction")
    if direction is None:
        return bool(maximizing_score)
    if direction not in (MAXIMIZE, MINIMIZE):
        raise ConfigError(f"objective.direction={direction!r} is not known; valid values: maximize, minimize, null")
    if (direction == MAXIMIZE) != bool(maximizing_score):
        metric = "higher is better (an accuracy)" if maximizing_score else "lower is better (a loss)"
        raise ConfigError(
            f"objective.direction={direction} contradicts dendrites.maximizing_score={bool(maximizing_score)} "
            f"({metric}); drop objective.direction or fix dendrites.maximizing_score"
        )
    return direction == MAXIMIZE


def directions(objective_cfg: Any, maximizing_score: bool) -> list[str]:
    """Optuna study directions for this objective."""
    score_dir = MAXIMIZE if is_maximizing(objective_cfg, maximizing_score) else MINIMIZE
    name = _get(objective_cfg, "name", "accuracy")
    if name == "efficiency":
        return [score_dir, MINIMIZE]
    if name in ("accuracy", "scalar"):
        return [score_dir]
    raise ConfigError(f"objective.name={name!r} is not known; valid values: accuracy, efficiency, scalar")


def penalty_for(findings: Iterable[Any], penalties: Mapping[str, float], dendrites: Any = None) -> tuple[float, list[str]]:
    """Sum of the configured penalties of the rules that fired (each rule once) about this architecture.

    A finding names the dendrite counts it is about (Finding.dendrites; None: the whole run), so a
    run's smaller architecture (a derived point) and the run's chosen one are charged alike for
    what concerns them, and neither for what concerns only the other."""
    def about(f: Any) -> bool:
        counts = _get(f, "dendrites")
        return counts is None or dendrites is None or int(dendrites) in {int(c) for c in counts}

    fired = sorted({str(_get(f, "rule_id")) for f in findings or () if about(f)})
    charged = [r for r in fired if r in (penalties or {})]
    return float(sum(float(penalties[r]) for r in charged)), charged


def compute_values(
    result: Any,
    history: Any,
    findings: Iterable[Any],
    choice: Any,
    objective_cfg: Any,
    baseline: Baseline | None = None,
    apply_penalties: bool = True,
) -> ObjectiveValues:
    """Values, constraints and their explanation for one finished trial.

    result: TrialResult (best_val/best_test/params/base_params/maximizing); history: the
    analysis' RunHistory (unused here beyond the choice, kept for richer objectives);
    choice: the analysis' ArchitectureChoice (dendrites, val, test, params) or None to use
    the raw result. Raises SweepError when there is no finite score or parameter count.
    """
    metric = _get(objective_cfg, "metric", "val")
    name = _get(objective_cfg, "name", "accuracy")
    maximizing = is_maximizing(objective_cfg, bool(_get(result, "maximizing", True)))
    use_choice = choice is not None and _get(objective_cfg, "use_analysis", True)
    if use_choice:
        raw, params, dendrites = _get(choice, metric), _get(choice, "params"), _get(choice, "dendrites")
    else:
        raw = _get(result, "best_test" if metric == "test" else "best_val")
        params, dendrites = _get(result, "params"), _get(result, "dendrites")
    score = finite(raw, loose=True)
    if score is None:
        raise SweepError(f"no finite {metric} score (got {raw!r}): the trial diverged or never evaluated")
    sign = 1.0 if maximizing else -1.0
    penalties = _get(objective_cfg, "penalties", {}) or {}
    penalty, charged = penalty_for(findings, penalties, dendrites) if apply_penalties else (0.0, [])
    adjusted = score - sign * penalty
    attrs: dict[str, Any] = {
        "score": score,
        "penalty": penalty,
        "penalized_rules": charged,
        "objective_score": adjusted,
        "chosen_dendrites": dendrites,
        "chosen_params": params,
        "chosen_by": "analysis" if use_choice else "result",
    }
    if use_choice and _get(choice, "reason"):
        attrs["chosen_reason"] = str(_get(choice, "reason"))
    if name == "accuracy":
        return ObjectiveValues([adjusted], {}, attrs)
    n_params = finite(params, loose=True)
    if n_params is None or n_params <= 0:
        raise SweepError(f"objective {name} needs the parameter count, got {params!r}")
    if name == "efficiency":
        constraints = {}
        if baseline is not None:
            floor = baseline.score - sign * float(_get(objective_cfg, "tolerance", 0.0))
            # <= 0 is feasible: maximising, score must reach floor; minimising, stay under it.
            constraints = {CONSTRAINT: sign * (floor - score)}
            attrs.update(baseline_score=baseline.score, constraint=constraints[CONSTRAINT], feasible=constraints[CONSTRAINT] <= 0)
        return ObjectiveValues([adjusted, n_params], constraints, attrs)
    if name == "scalar":
        base = finite(baseline.params, loose=True) if baseline is not None and baseline.params else finite(_get(result, "base_params"), loose=True)
        if base is None or base <= 0:
            base = n_params
        weight = float(_get(objective_cfg, "param_weight", 0.0))
        growth = math.log2(n_params / base)
        attrs.update(base_params=base, param_growth_log2=growth)
        return ObjectiveValues([adjusted - sign * weight * growth], {}, attrs)
    raise ConfigError(f"objective.name={name!r} is not known; valid values: accuracy, efficiency, scalar")
