"""summary.json and the final table: every trial, where it came from, and whether dendrites helped."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from pai_sweep.progress import Progress
from pai_sweep.sweep.study import BASELINE, DERIVED, counts_toward_budget, origin
from pai_sweep.trial_files import write_json

COLUMNS = ["trial", "origin", "state", "values", "dendrites", "params", "no_dendrites", "findings", "reason"]


def trial_row(t: optuna.trial.FrozenTrial) -> dict[str, Any]:
    a = t.user_attrs
    return {
        "trial": t.number,
        "origin": origin(t),
        "state": t.state.name.lower(),
        "values": [round(v, 4) for v in t.values] if t.values else None,
        "dendrites": a.get("chosen_dendrites", a.get("dendrites")),
        "params": a.get("chosen_params", a.get("n_params")),
        "no_dendrites": a.get("no_dendrite_score"),
        "findings": ",".join(a.get("findings", [])) or None,
        "reason": None if t.state == TrialState.COMPLETE else a.get("reason"),
        "parent": a.get("parent"),
        "settings": a.get("params"),
        "trial_dir": a.get("trial_dir"),
    }


def dendrite_verdict(trials: list[optuna.trial.FrozenTrial], maximize: bool) -> dict[str, Any]:
    """Did dendrites help? Each run that grew dendrites: its grown architecture vs its own 0-dendrite phase, compared
    only where that phase had plateaued (else the plain score is a lower bound and the comparison is confounded with
    training time), and counted as help only beyond the sampling noise (trial attr dendrite_gain)."""
    gains, unmatched = [], 0
    for t in trials:
        a = t.user_attrs
        grew = (a.get("dendrites") or 0) > 0
        if t.state != TrialState.COMPLETE or origin(t) in (DERIVED, BASELINE) or not grew or a.get("dendrite_gain") is None:
            continue
        if not a.get("no_dendrite_plateaued", False):
            unmatched += 1
            continue
        g = a["dendrite_gain"]
        gains.append((float(g["effect"]), float(g["se"]), bool(g["beyond_noise"]), t.number, a.get("dendrites")))
    helped = [g for g in gains if g[2]]
    verdict: dict[str, Any] = {"trials_compared": len(gains), "helped": len(helped), "not_plateaued": unmatched}
    text = f"dendrites helped beyond the noise in {len(helped)} of {len(gains)} trials that grew them (at matched plateaus)"
    if unmatched:
        text += f"; {unmatched} more not compared (the plain phase was still improving at the switch)"
    if gains:
        best = max(gains)
        verdict.update(best_gain=best[0], best_gain_se=best[1], best_gain_trial=best[3])
        text += f" (largest gain {best[0]:+.3g} +/- {best[1]:.2g} in trial {best[3]} with {best[4]} dendrite(s))"
    base = [t for t in trials if origin(t) == BASELINE and t.state == TrialState.COMPLETE]
    if base:
        verdict["baseline_score"] = base[0].user_attrs.get("score")
        text += f"; baseline without dendrites: {verdict['baseline_score']:.4g}"
    verdict["text"] = text
    return verdict


def build_summary(cfg: Any, study: optuna.Study, sweep_dir: Path, stopped: str | None = None) -> dict[str, Any]:
    trials = study.get_trials(deepcopy=False)
    maximize = study.directions[0] == optuna.study.StudyDirection.MAXIMIZE
    try:
        best = [t.number for t in study.best_trials]
    except (ValueError, RuntimeError):
        best = []
    return {
        "name": cfg.sweep.name,
        "dir": str(sweep_dir),
        "objective": cfg.objective.name,
        "directions": [d.name.lower() for d in study.directions],
        "n_trials": int(cfg.sweep.n_trials),
        "counted": sum(1 for t in trials if counts_toward_budget(t)),
        "states": dict(Counter(t.state.name.lower() for t in trials)),
        "origins": dict(Counter(origin(t) for t in trials)),
        "best_trials": best,
        "dendrites": dendrite_verdict(trials, maximize),
        "stopped": stopped,
        "trials": [trial_row(t) for t in trials],
    }


def write_summary(summary: dict[str, Any], sweep_dir: Path, progress: Progress) -> None:
    write_json(Path(sweep_dir) / "summary.json", summary)
    progress.note(f"sweep {summary['name']}: {summary['counted']}/{summary['n_trials']} trials, states {summary['states']}")
    progress.table([r for r in summary["trials"] if r["state"] != "waiting"], COLUMNS)
    if summary["best_trials"]:
        progress.note(f"best: trial(s) {', '.join(map(str, summary['best_trials']))}; {summary['dendrites']['text']}")
