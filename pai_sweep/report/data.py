"""Read a sweep folder (study + trial folders) into plain rows, and the numbers the report shows.

Everything here is data: no plotting, no text. report.json is `asdict(SweepData)` plus the
derived tables, so a test (or a person) can check the report's numbers against the study.
"""

from __future__ import annotations

import json
import warnings
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pai_sweep import trial_files
from pai_sweep.errors import SweepError
from pai_sweep.trial_files import finite, read_yaml

STUDY_DB = "study.db"
CONFIG = "config.yaml"
TRIALS = "trials"
FINDINGS = Path("analysis") / "findings.json"  # written by the analysis package (write_outputs)
DRIVER_ANALYSIS = "analysis.json"  # the driver's own record of a trial's analysis: {"findings": [...], ...}


@dataclass
class TrialRow:
    number: int
    state: str  # Optuna state: COMPLETE, FAIL, PRUNED, RUNNING, WAITING
    origin: str  # sampler, rule:<rule_id>, derived, baseline
    objective: float | None  # values[0]: what the study optimises (score minus penalties)
    params: float | None  # parameters: values[1] (efficiency), else the chosen architecture's, else the result's
    score: float | None  # the raw score before penalties (user attr "score"), else objective
    dendrites: int | None
    feasible: bool | None  # efficiency with a baseline: score >= baseline - tolerance
    status: str | None  # result.json status
    reason: str | None
    search: dict[str, Any] = field(default_factory=dict)  # the trial's search-space values
    findings: list[dict] = field(default_factory=list)  # {"rule_id", "severity"} of each finding in this trial
    analysed: bool = False  # the trial folder has analysis/findings.json
    completed: str | None = None  # ISO time the trial finished
    test: float | None = None  # the test score of the same architecture (selected on validation, reported beside it)
    lower_bounds: int = 0  # smaller architectures the switch cut short (scores that are lower bounds, not values)
    started: str | None = None  # where it started when not at epoch 0: "branch of #3 @28", "continues #5"
    design: str | None = None  # a sampler trial whose params a start-up design fixed: "size_ladder"

    @property
    def rule(self) -> str | None:
        return self.origin[len("rule:"):] if self.origin.startswith("rule:") else None


def _started(attrs: dict) -> str | None:
    """The start-point user attrs (sweep/start_points.py) in a few characters for the trials table."""
    if attrs.get("continues") is not None:
        return f"continues #{attrs['continues']}"
    if attrs.get("branched_from") is not None:
        return f"branch of #{attrs['branched_from']} @{attrs.get('branch_epoch', '?')}"
    return None


@dataclass
class SweepData:
    name: str
    sweep_dir: str
    directions: list[str]  # Optuna directions, "maximize"/"minimize"; [0] is the objective
    objective_name: str
    rows: list[TrialRow]
    search_keys: list[str]
    tolerance: float = 1.0  # objective.tolerance: how far below the baseline's score still "matches" it

    @property
    def maximize(self) -> bool:
        return self.directions[0] == "maximize"

    def done(self) -> list[TrialRow]:
        return [r for r in self.rows if r.state == "COMPLETE" and r.objective is not None]

    def baseline(self) -> TrialRow | None:
        return next((r for r in self.done() if r.origin == "baseline"), None)


def open_study(sweep_dir: Path):
    """The sweep's Optuna study: storage and name from config.yaml, else study.db's only study."""
    import optuna

    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        key, _, value = str(sweep_dir).partition("=")
        if value and Path(value).is_dir():  # `pai-sweep report sweep.dir=X`, as the sweep command takes it
            raise SweepError(f"{sweep_dir} is an override, not a folder: pass the folder itself (pai-sweep report {value})")
        raise SweepError(f"{sweep_dir} is not a folder: pass a sweep folder (e.g. sweeps/default)")
    sweep_cfg = read_yaml(sweep_dir / CONFIG).get("sweep") or {}
    storage = sweep_cfg.get("storage") or None
    if storage is None:
        db = sweep_dir / STUDY_DB
        if not db.exists():
            raise SweepError(f"{sweep_dir} has no {STUDY_DB} and its {CONFIG} names no sweep.storage: not a sweep folder")
        storage = f"sqlite:///{db.resolve()}"
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    names = [s.study_name for s in optuna.get_all_study_summaries(storage)]
    name = sweep_cfg.get("name")
    if name not in names:
        if len(names) != 1:
            raise SweepError(f"no study {name!r} in {storage}; studies there: {', '.join(names) or 'none'}")
        name = names[0]
    return optuna.load_study(study_name=name, storage=storage)


def load_sweep(sweep_dir: Path, study=None) -> SweepData:
    """Rows for every trial in the study, joined with its trial folder (result.json, findings.json)."""
    sweep_dir = Path(sweep_dir)
    study = study or open_study(sweep_dir)
    cfg = read_yaml(sweep_dir / CONFIG)
    directions = [d.name.lower() for d in study.directions]
    rows = []
    keys: list[str] = []
    for t in study.get_trials(deepcopy=False):
        attrs = t.user_attrs
        # A derived trial's trial_dir attr is its parent's folder: it has no files of its own.
        own = attrs.get("trial_dir") if attrs.get("origin") != "derived" else None
        folder = Path(own) if own and Path(own).is_dir() else sweep_dir / TRIALS / str(t.number)
        result = trial_files.read_result(folder) if folder.is_dir() else None
        values = list(t.values) if t.values is not None else []
        objective = finite(values[0]) if values else None
        params = finite(values[1]) if len(values) > 1 else None
        if params is None:
            params = finite(attrs.get("chosen_params")) or finite(attrs.get("params")) or finite(result.params if result else None)
        dendrites = attrs.get("chosen_dendrites", result.dendrites if result else attrs.get("dendrites"))
        score = finite(attrs.get("score"))
        for key in t.params:
            if key not in keys:
                keys.append(key)
        rows.append(TrialRow(
            number=t.number,
            state=t.state.name,
            origin=str(attrs.get("origin", "sampler")),
            objective=objective,
            params=params,
            score=score if score is not None else objective,
            test=finite(attrs.get("chosen_test", attrs.get("best_test"))),
            dendrites=int(dendrites) if finite(dendrites) is not None else None,
            feasible=attrs.get("feasible") if isinstance(attrs.get("feasible"), bool) else None,
            status=result.status if result else attrs.get("status"),
            reason=attrs.get("reason") or (result.reason if result else None),
            search={k: v for k, v in t.params.items()},
            # findings.json is the record; the driver's "findings" attr (rule ids) stands in without it
            findings=_trial_findings(folder, attrs),
            analysed=(folder / FINDINGS).is_file() or (folder / DRIVER_ANALYSIS).is_file() or "findings" in attrs,
            completed=t.datetime_complete.isoformat() if t.datetime_complete else None,
            lower_bounds=len(attrs.get("lower_bounds") or []),
            started=_started(attrs),
            design=attrs.get("design"),
        ))
    objective_name = str((cfg.get("objective") or {}).get("name") or ("efficiency" if len(directions) > 1 else "accuracy"))
    return SweepData(name=study.study_name, sweep_dir=str(sweep_dir.resolve()), directions=directions,
                     objective_name=objective_name, rows=rows, search_keys=keys,
                     tolerance=float((cfg.get("objective") or {}).get("tolerance", 1.0) or 0.0))


def _trial_findings(folder: Path, attrs: dict) -> list[dict]:
    """analysis/findings.json, else the driver's analysis.json, else the rule ids in the "findings" attr."""
    for path in (folder / FINDINGS, folder / DRIVER_ANALYSIS):
        if path.is_file():
            return _fired_rules(path)
    return [{"rule_id": str(f), "severity": "?"} for f in attrs.get("findings") or []]


def _fired_rules(path: Path) -> list[dict]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return []
    items = data.get("findings", []) if isinstance(data, dict) else data
    return [{"rule_id": str(f["rule_id"]), "severity": str(f.get("severity", "?"))}
            for f in items if isinstance(f, dict) and f.get("rule_id")]


def _better(a: float, b: float, maximize: bool) -> bool:
    return a > b if maximize else a < b


def sorted_rows(data: SweepData) -> list[TrialRow]:
    """Finished trials best first by the objective, then the rest (failed, pruned, running) by number."""
    done = sorted(data.done(), key=lambda r: (-r.objective if data.maximize else r.objective, r.number))
    rest = sorted((r for r in data.rows if r not in done), key=lambda r: r.number)
    return done + rest


def pareto_front(data: SweepData) -> list[TrialRow]:
    """Non-dominated finished trials on (objective, parameters; fewer parameters is better), by parameters.

    Infeasible trials (below the baseline constraint) are never on the front.
    """
    points = [r for r in data.done() if r.params is not None and r.feasible is not False]
    sign = 1.0 if data.maximize else -1.0

    def dominates(a: TrialRow, b: TrialRow) -> bool:
        no_worse = sign * a.objective >= sign * b.objective and a.params <= b.params
        return no_worse and (sign * a.objective > sign * b.objective or a.params < b.params)

    front = [p for p in points if not any(dominates(q, p) for q in points if q is not p)]
    return sorted(front, key=lambda r: (r.params, r.number))


def front_groups(front: list[TrialRow]) -> list[list[TrialRow]]:
    """Front points with the same objective and parameters (a repeat of a known point) as one group each."""
    groups: dict[tuple, list[TrialRow]] = {}
    for r in front:
        groups.setdefault((r.objective, r.params), []).append(r)
    return list(groups.values())


def baseline_match(data: SweepData) -> dict[str, Any] | None:
    """The smallest trial whose raw score matches the baseline's within objective.tolerance: parameters saved."""
    base = data.baseline()
    if base is None or base.score is None or not base.params:
        return None
    sign = 1.0 if data.maximize else -1.0
    floor = base.score - sign * data.tolerance
    matches = [r for r in data.done() if r.origin != "baseline" and r.params is not None and r.score is not None
               and sign * r.score >= sign * floor and r.feasible is not False]
    if not matches:
        return {"trial": None, "baseline_score": base.score, "baseline_params": base.params, "tolerance": data.tolerance}
    best = min(matches, key=lambda r: (r.params, -sign * r.score, r.number))
    return {"trial": best.number, "score": best.score, "params": best.params, "baseline_score": base.score,
            "baseline_params": base.params, "tolerance": data.tolerance, "params_saved": 1.0 - best.params / base.params}


def best_so_far(data: SweepData) -> list[dict[str, Any]]:
    """Best objective after each trial that ran (derived trials cost nothing and do not count as used)."""
    out, best, used = [], None, 0
    for r in sorted(data.rows, key=lambda r: r.number):
        if r.origin != "derived":
            used += 1
        if r.state == "COMPLETE" and r.objective is not None and (best is None or _better(r.objective, best, data.maximize)):
            best = r.objective
        out.append({"trial": r.number, "trials_used": used, "best": best})
    return out


def findings_summary(data: SweepData) -> list[dict[str, Any]]:
    """Rules by how many trials they fired in, most first, with their severities."""
    counts = Counter(rule for r in data.rows for rule in {f["rule_id"] for f in r.findings})
    severities: dict[str, Counter] = defaultdict(Counter)
    for r in data.rows:
        for f in r.findings:
            severities[f["rule_id"]][f["severity"]] += 1
    analysed = sum(1 for r in data.rows if r.analysed)
    return [{"rule_id": rule, "trials": n, "of_analysed": analysed, "severity": dict(severities[rule])}
            for rule, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]


def rules_vs_sampler(data: SweepData) -> list[dict[str, Any]]:
    """Each finished rule-enqueued trial against the sampler's best (at that time, and overall)."""
    sampler = [r for r in data.done() if r.origin == "sampler"]
    pick = max if data.maximize else min
    overall = pick((r.objective for r in sampler), default=None)
    out = []
    for r in sorted((r for r in data.done() if r.rule), key=lambda r: r.number):
        earlier = [s.objective for s in sampler if (s.completed or "") <= (r.completed or "")]
        then = pick(earlier, default=None)
        out.append({
            "trial": r.number, "rule": r.rule, "objective": r.objective,
            "sampler_best_then": then, "sampler_best": overall,
            "beat_then": then is None or _better(r.objective, then, data.maximize),
            "beat_overall": overall is None or _better(r.objective, overall, data.maximize),
        })
    return out


def importances(data: SweepData, study=None, min_trials: int = 5) -> tuple[dict[str, float], str]:
    """Parameter importances (Optuna's default evaluator) on the objective, or why there are none."""
    done = data.done()
    varying = [k for k in data.search_keys if len({json.dumps(r.search.get(k)) for r in done if k in r.search}) > 1]
    if len(varying) < 2:
        return {}, f"needs at least 2 parameters that vary (varied: {', '.join(varying) or 'none'})"
    if len(done) < min_trials:
        return {}, f"needs at least {min_trials} finished trials (have {len(done)})"
    if len({r.objective for r in done}) == 1:  # no variation to share out: the evaluator's even split would be noise
        return {}, f"every finished trial has the same objective ({done[0].objective:.4g}): no searched setting changed it"
    import optuna

    try:
        study = study or open_study(Path(data.sweep_dir))
        sign = -1.0 if data.maximize else 1.0  # Optuna's evaluator explains what makes the target low
        with warnings.catch_warnings():  # it warns about the sign on every call, even when handled
            warnings.simplefilter("ignore")
            found = optuna.importance.get_param_importances(study, params=varying, target=lambda t: sign * t.values[0])
    except Exception as exc:  # the evaluator refuses odd spaces (one value, conditionals): say so, no crash
        return {}, f"not computed ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})"
    return {k: float(v) for k, v in found.items()}, ""
