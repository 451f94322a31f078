"""One finished trial folder -> what the driver tells Optuna (state, values, constraints, attrs).

result.json is the only proof a trial finished; a complete trial is analysed (history,
findings, the architecture the analysis picks) and the objective turns that into values.
The analysis' view of each trial is saved as trials/<n>/analysis.json.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from optuna.trial import TrialState

from pai_sweep.errors import PaiSweepError
from pai_sweep.objective import Baseline, compute_values
from pai_sweep.sweep.running import Outcome
from pai_sweep.sweep.verify import built_mismatch
from pai_sweep.trial_files import PAI_SAVE_NAME, RUN_CONFIG, STATUS_COMPLETE, STATUS_PRUNED, WORKER_LOG, TrialResult, jsonable, write_json

ANALYSIS_FILE = "analysis.json"
NEVER_ADDED = "dendrites.never_added"


def log_tail(trial_dir: Path, lines: int = 4, limit: int = 400) -> str:
    """The last lines of the worker's log, on one line (the reason a trial died is usually there)."""
    try:
        text = (Path(trial_dir) / WORKER_LOG).read_text(errors="replace")
    except OSError:
        return ""
    tail = [ln.strip() for ln in text.splitlines() if ln.strip()][-lines:]
    return " | ".join(tail)[-limit:]


def missing_result_reason(trial_dir: Path, returncode: int | None) -> str:
    code = f" (exit code {returncode})" if returncode is not None else ""
    tail = log_tail(trial_dir)
    return f"exited without result.json{code}" + (f": {tail}" if tail else "")


def _analysis_context(trial_dir: Path, result: TrialResult, baseline: Baseline | None) -> Any:
    """RuleContext from the trial's run.yaml plus what only the driver knows (the baseline)."""
    from omegaconf import OmegaConf

    from pai_sweep.analysis.context import RuleContext

    try:
        run = OmegaConf.to_container(OmegaConf.load(Path(trial_dir) / RUN_CONFIG), resolve=True)
    except (OSError, ValueError):
        run = {}
    run.update(
        baseline_score=baseline.score if baseline else None,
        baseline_params=baseline.params if baseline else None,
        original_params=result.original_params,
    )
    return RuleContext.from_run_config(run)


def analyse(trial_dir: Path, result: TrialResult, baseline: Baseline | None) -> tuple[Any, list, Any, Any, str | None]:
    """(history, findings, choice, context, error) from pai_sweep.analysis; a failing analysis never stops the sweep."""
    try:
        from pai_sweep.analysis.api import analyze, write_outputs
    except ImportError as exc:
        return None, [], None, None, f"analysis unavailable: {exc}"
    try:
        context = _analysis_context(trial_dir, result, baseline)
        # the worker always uses save_name "pai"; findings.json, report.md and plots go to trial/analysis/
        done = analyze(trial_dir, context, save_name=PAI_SAVE_NAME)
    except Exception as exc:  # noqa: BLE001 - the raw result still gives a value
        return None, [], None, None, f"analysis failed: {type(exc).__name__}: {exc}"
    try:
        write_outputs(done, Path(trial_dir) / "analysis")
    except Exception:  # noqa: BLE001 - the files are for people; the values are already computed
        pass
    return done.history, list(done.findings), done.choice, done.context, None


def evaluate(
    trial_dir: Path, result: TrialResult | None, cfg: Any, baseline: Baseline | None, returncode: int | None = None, apply_penalties: bool = True
) -> Outcome:
    if result is None:
        return Outcome(TrialState.FAIL, missing_result_reason(trial_dir, returncode))
    if result.status == STATUS_PRUNED:
        return Outcome(TrialState.PRUNED, result.reason, result)
    if result.status != STATUS_COMPLETE:
        return Outcome(TrialState.FAIL, result.reason or "failed without a reason", result)
    if wrong := built_mismatch(trial_dir, result):  # a value the trial never used must not reach the study
        return Outcome(TrialState.FAIL, wrong, result)
    history, findings, choice, context, error = analyse(trial_dir, result, baseline)
    priced = findings
    if _asked_for_no_dendrites(trial_dir):
        # A trial searched with max_dendrites=0 (or dendrites off) is the plain model by design.
        priced = [f for f in findings if getattr(f, "rule_id", None) != NEVER_ADDED]
    try:
        ov = compute_values(result, history, priced, choice, cfg.objective, baseline, apply_penalties=apply_penalties)
    except PaiSweepError as exc:
        return Outcome(TrialState.FAIL, str(exc), result, history=history, findings=findings, choice=choice)
    attrs = dict(ov.attrs)
    attrs["findings"] = sorted({str(getattr(f, "rule_id", f)) for f in findings})
    row0 = _no_dendrite_score(history, cfg.objective.metric)
    if row0 is not None:
        attrs["no_dendrite_score"] = row0
    if history is not None and context is not None:
        attrs.update(_dendrite_effect(history, context))
    if error:
        attrs["analysis_error"] = error
    unwritten = None
    try:
        write_json(
            Path(trial_dir) / ANALYSIS_FILE,
            {"choice": jsonable(choice), "findings": jsonable(findings), "objective": attrs, "values": ov.values, "constraints": ov.constraints},
        )
    except OSError as exc:  # the values stand: the trial is told, then the sweep stops on the folder's error
        unwritten = exc
    return Outcome(TrialState.COMPLETE, result.reason, result, ov.values, ov.constraints, attrs, history, findings, choice, context, unwritten)


def _dendrite_effect(history: Any, context: Any) -> dict[str, Any]:
    """What dendrites did in this run, honestly: the chosen architecture vs the run's own plain phase, with the
    sampling error, and whether both had plateaued (a plain phase cut short by the switch is a lower bound)."""
    from pai_sweep.analysis.measures import gain_judgement, plateau
    from pai_sweep.analysis.noise import noise_of
    from pai_sweep.sweep.feedback import lower_bounds

    out: dict[str, Any] = {"noise": noise_of(history, context).to_dict()}
    bounds = lower_bounds(history, context)
    if bounds:
        out["lower_bounds"] = bounds
    grown = int(getattr(history, "dendrites", 0) or 0)
    if grown > 0:
        j = gain_judgement(history, context, 0, grown)
        if j is not None:
            out["dendrite_gain"] = j.evidence()
        out["no_dendrite_plateaued"] = bool(plateau(history, context, 0)[0])
    return out


def _asked_for_no_dendrites(trial_dir: Path) -> bool:
    from omegaconf import OmegaConf

    try:
        d = OmegaConf.load(Path(trial_dir) / RUN_CONFIG).dendrites
        return int(d.max_dendrites) == 0 or not bool(d.enabled)
    except Exception:  # noqa: BLE001 - no run.yaml: charge penalties as usual
        return False


def _no_dendrite_score(history: Any, metric: str) -> float | None:
    from pai_sweep.sweep.feedback import best_arch_rows

    column = metric
    if metric != "val" and hasattr(history, "extra_name"):
        column = history.extra_name(metric) or metric
    for row in best_arch_rows(history):
        if row.get("dendrites") == 0:
            value = row.get(column)
            try:
                return float(value)
            except (TypeError, ValueError):
                return None
    return None
