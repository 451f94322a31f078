"""Feedback from one analysed trial into the study: rule-recommended trials and derived trials.

Rule trials: a finding's recommendation (config key -> absolute value, or "+5" / "-1" / "x0.5"
relative to the trial's own value) becomes the parent's params with those keys changed,
fitted into the search space, and is enqueued unless an identical trial exists or is queued.
Derived trials: a run that grew k dendrites also measured every smaller accepted architecture
(best-architecture rows 0..k-1); each whose phase had plateaued becomes a finished trial with
max_dendrites = that count, charged the penalties of the findings about that architecture. One
cut short by a switch while still improving is a lower bound, recorded on the parent only.
"""

from __future__ import annotations

import json
import re
from types import SimpleNamespace
from typing import Any, Iterable, Mapping

import optuna
from omegaconf import OmegaConf
from optuna.trial import FrozenTrial

from pai_sweep.objective import Baseline, compute_values
from pai_sweep.search_space import MISSING, SearchSpace
from pai_sweep.sweep.study import DERIVED, RULE
from pai_sweep.trial_files import jsonable

MAX_DENDRITES = "dendrites.max_dendrites"
_RELATIVE = re.compile(r"^\s*([+\-x*])\s*([0-9.eE+\-]+)\s*$")


def resolve_key(key: str, space: SearchSpace) -> str | None:
    """A recommendation key as a searched key: exact, under dendrites., or a unique dotted suffix."""
    if key in space:
        return key
    if f"dendrites.{key}" in space:
        return f"dendrites.{key}"
    matches = [k for k in space.keys if k.endswith("." + key)]
    return matches[0] if len(matches) == 1 else None


def apply_change(current: Any, change: Any) -> Any:
    """An absolute value, or a relative string: '+5', '-1', 'x0.5' / '*0.5'."""
    if isinstance(change, str):
        m = _RELATIVE.match(change)
        if m and isinstance(current, (int, float)) and not isinstance(current, bool):
            op, amount = m.group(1), float(m.group(2))
            return current + amount if op == "+" else current - amount if op == "-" else current * amount
    return change


def params_key(params: Mapping[str, Any]) -> str:
    return json.dumps({k: params[k] for k in sorted(params)}, sort_keys=True, default=str)


def known_param_sets(study: optuna.Study, space: SearchSpace) -> set[str]:
    """Every stored trial's params (running, waiting, finished), decoded, for deduplication."""
    return {params_key(space.decode(t.params or t.system_attrs.get("fixed_params", {}))) for t in study.get_trials(deepcopy=False)}


def recommended_params(
    finding: Any, parent_params: Mapping[str, Any], space: SearchSpace, config: Any
) -> dict[str, Any] | None:
    """The parent's params changed as the finding recommends, inside the space; None when nothing applies."""
    rec = getattr(finding, "recommendation", None) or {}
    params = dict(parent_params)
    changed = False
    for raw_key, change in dict(rec).items():
        key = resolve_key(str(raw_key), space)
        if key is None:
            continue
        current = params.get(key, OmegaConf.select(config, key, default=None))
        current = OmegaConf.to_container(current) if OmegaConf.is_config(current) else current
        fitted = space.fit(key, apply_change(current, change))
        if fitted is MISSING:
            continue
        params[key] = fitted
        changed = changed or fitted != parent_params.get(key)
    if not changed:
        return None
    params = space.complete(params)
    return params if space.contains(params) else None


def new_recommendations(advice: Iterable[tuple], study: optuna.Study, space: SearchSpace, config: Any) -> list[tuple[str, dict[str, Any], tuple]]:
    """(rule_id, recommended params, the advice item) for each item (finding, parent number, parent params, ...) whose
    recommendation is a trial neither stored nor queued yet, in order; repeats among them dropped."""
    seen = known_param_sets(study, space)
    out: list[tuple[str, dict[str, Any], tuple]] = []
    for item in advice:
        finding, _, parent_params = item[:3]
        params = recommended_params(finding, parent_params, space, config)
        if params is None or params_key(params) in seen:
            continue
        seen.add(params_key(params))
        out.append((str(getattr(finding, "rule_id", "unknown")), params, item))
    return out


def enqueue_rule_trials(
    study: optuna.Study,
    findings: Iterable[Any],
    parent_number: int,
    parent_params: Mapping[str, Any],
    space: SearchSpace,
    config: Any,
    room: int,
) -> list[tuple[str, dict[str, Any]]]:
    """Enqueue up to `room` new trials from one trial's findings, without the rule policy; returns (rule_id, params)."""
    added: list[tuple[str, dict[str, Any]]] = []
    advice = [(f, parent_number, parent_params) for f in findings]
    for rule_id, params, _ in new_recommendations(advice, study, space, config)[: max(0, room)]:
        enqueue_rule_trial(study, rule_id, parent_number, params, space)
        added.append((rule_id, params))
    return added


def enqueue_rule_trial(study: optuna.Study, rule_id: str, parent_number: int, params: Mapping[str, Any], space: SearchSpace) -> None:
    study.enqueue_trial(
        space.encode(dict(params)), user_attrs={"origin": f"{RULE}{rule_id}", "parent": parent_number, "params": jsonable(params)}
    )


def _row_value(row: Mapping[str, Any], *names: str) -> Any:
    for name in names:
        if name in row and row[name] is not None:
            return row[name]
    return None


def best_arch_rows(history: Any) -> list[dict[str, Any]]:
    """history.best_arch (a DataFrame or list of dicts) as plain dicts."""
    table = getattr(history, "best_arch", None)
    if table is None:
        return []
    if hasattr(table, "to_dict"):
        return [dict(r) for r in table.to_dict("records")]
    return [dict(r) for r in table]


def smaller_architectures(history: Any, context: Any = None) -> list[dict[str, Any]]:
    """Every accepted architecture smaller than the run's last one, with whether its phase had plateaued.

    A derived point is a finished value only when the run had stopped improving at that count (the
    still-improving test of analysis.measures.plateau, judged against the sampling noise); otherwise
    the score is a lower bound of what that architecture reaches (it was cut short by the switch)."""
    from pai_sweep.analysis.context import RuleContext
    from pai_sweep.analysis.measures import plateau

    rows = [r for r in best_arch_rows(history) if bool(_row_value(r, "accepted") if "accepted" in r else True)]
    counts = [int(_row_value(r, "dendrites")) for r in rows if _row_value(r, "dendrites") is not None]
    if not counts:
        return []
    ctx = context if context is not None else history.context() if hasattr(history, "context") else RuleContext()
    out = []
    for row in rows:
        count = int(row["dendrites"])
        if count >= max(counts):
            continue
        done, rise = plateau(history, ctx, count)
        out.append({**row, "dendrites": count, "plateaued": bool(done),
                    "still_rising": rise.evidence() if rise is not None else None})
    return out


def lower_bounds(history: Any, context: Any = None) -> list[dict[str, Any]]:
    """The smaller architectures cut short before they plateaued: scores that are lower bounds (a user attr)."""
    return [{"dendrites": a["dendrites"], "val": jsonable(_row_value(a, "val")), "params": jsonable(_row_value(a, "params")),
             "still_rising": a["still_rising"]} for a in smaller_architectures(history, context) if not a["plateaued"]]


def derived_trials(
    history: Any,
    parent: FrozenTrial | None,
    parent_number: int,
    parent_params: Mapping[str, Any],
    space: SearchSpace,
    result: Any,
    objective_cfg: Any,
    baseline: Baseline | None,
    findings: Iterable[Any] = (),
    context: Any = None,
) -> list[FrozenTrial]:
    """One finished trial per accepted smaller architecture the run passed through and saw plateau, except the
    one the parent's own value already stands for (its chosen architecture). Each is charged the penalties of the findings about its own architecture, like its parent."""
    if MAX_DENDRITES not in space:
        return []
    test_col = history.extra_name("test") if hasattr(history, "extra_name") else None
    findings = list(findings or ())
    chosen = parent.user_attrs.get("chosen_dendrites") if parent is not None else None
    out = []
    for row in smaller_architectures(history, context):
        count = row["dendrites"]
        if not row["plateaued"] or space.fit(MAX_DENDRITES, count) != count or count == chosen:
            continue  # a lower bound, not a value; a count outside the searched range; or the parent's own point
        params = space.complete({**parent_params, MAX_DENDRITES: count})
        choice = SimpleNamespace(
            dendrites=count, val=_row_value(row, "val"), test=_row_value(row, *(c for c in (test_col, "test", "Test") if c)),
            params=_row_value(row, "params"),
        )
        try:
            ov = compute_values(result, history, findings, choice, objective_cfg, baseline)
        except Exception:  # noqa: BLE001 - a row without a usable score is skipped, not fatal
            continue
        attrs = {
            "origin": DERIVED,
            "parent": parent_number,
            "params": jsonable(params),
            "status": "complete",
            "reason": f"architecture with {count} dendrite(s) measured by trial {parent_number} (its phase had plateaued)",
            "dendrites": count,
            **{k: jsonable(v) for k, v in ov.attrs.items()},
            "chosen_val": jsonable(choice.val),
            "chosen_test": jsonable(choice.test),
            "trial_dir": parent.user_attrs.get("trial_dir") if parent is not None else None,
        }
        out.append(
            optuna.trial.create_trial(
                params=space.encode(params),
                distributions=space.distributions(params),
                values=ov.values,
                constraints=ov.constraints or None,
                user_attrs=attrs,
            )
        )
    return out
