"""Plain data for tracking (no mlflow): a config flattened to params, an Optuna trial as JSON-safe data (what
the backlog keeps), the numbers a trial or a sweep logs, and the facts (git commit, launcher) its tags carry."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

from pai_sweep import trial_files
from pai_sweep.trial_files import finite, jsonable

# Per-epoch metric name -> EpochRecord field (logged with step = epoch).
EPOCH_METRICS = {"val": "val", "train": "train", "test": "test", "loss": "loss", "lr": "lr",
                 "params": "params", "dendrites": "dendrites", "epoch_seconds": "seconds"}
# Final metric name -> TrialResult field.
# grown_dendrites: what the run added (result.json); chosen_dendrites: the architecture its values are about.
RESULT_METRICS = {"best_val": "best_val", "best_test": "best_test", "final_val": "final_val",
                  "final_params": "params", "base_params": "base_params", "original_params": "original_params",
                  "grown_dendrites": "dendrites", "epochs": "epochs", "train_seconds": "seconds"}
# User attrs that say where a trial started (sweep/start_points.py): tags, not metrics.
START_TAGS = ("rerun_of", "continues", "branched_from", "branch_epoch")
# User attrs that repeat a metric above (objective_score is `objective`, n_params `final_params`, ...) or are a tag.
ATTRS_NOT_LOGGED = {"objective_score", "n_params", "seconds", "epochs", "best_val", "best_test", "dendrites",
                    "origin", "status", "reason", "parent", "trial_dir", *START_TAGS}
MAX_PARAM = 6000  # MLflow's limit on a parameter value
BAD_KEY = re.compile(r"[^\w\-. /]")  # characters MLflow refuses in a key: each becomes "_"


def flatten(config: Any, prefix: str = "") -> dict[str, str]:
    """Nested config -> {"model.name": "small_cnn", ...}; lists stay one JSON value."""
    if hasattr(config, "_metadata"):  # a DictConfig: resolve interpolations first
        from omegaconf import OmegaConf

        config = OmegaConf.to_container(config, resolve=True)
    out: dict[str, str] = {}
    for key, value in (config or {}).items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(flatten(value, name + "."))
        else:
            text = json.dumps(value) if isinstance(value, (list, tuple, dict)) else str(value)
            out[BAD_KEY.sub("_", name)[:250]] = text[:MAX_PARAM]
    return out


def sweep_params(config: Any) -> dict[str, str]:
    """The parent run's params: the composed config flattened, where a searched key says so instead of showing the
    base config's value, which no trial need have used (its range is under sweep.space.<key>)."""
    out = flatten(config)
    space = ((config or {}).get("sweep") or {}).get("space") or {}
    for key in space:
        name = BAD_KEY.sub("_", str(key))[:250]
        out[name] = f"searched: see sweep.space.{key}"
    return out


def trial_record(trial) -> dict[str, Any]:
    """What the tracker needs from an Optuna FrozenTrial, as JSON-safe data (kept in the backlog)."""
    def ms(dt):
        return int(dt.timestamp() * 1000) if dt is not None else None

    return {
        "number": trial.number,
        "state": trial.state.name,
        "values": list(trial.values) if trial.values is not None else None,
        "params": {k: jsonable(v) for k, v in trial.params.items()},
        "user_attrs": {k: jsonable(v) for k, v in trial.user_attrs.items()},
        "start_ms": ms(trial.datetime_start),
        "end_ms": ms(trial.datetime_complete),
    }


def git_commit(cwd: Path | None = None) -> dict[str, str]:
    """The commit of the git repository the sweep runs in (the user's code), when there is one."""
    def git(*args):
        return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=5, stdin=subprocess.DEVNULL)

    try:
        head = git("rev-parse", "HEAD")
        if head.returncode != 0:
            return {}
        dirty = git("status", "--porcelain", "--untracked-files=no").stdout.strip() != ""
    except (OSError, subprocess.SubprocessError):
        return {}
    return {"mlflow.source.git.commit": head.stdout.strip(), "git.dirty": str(dirty).lower()}


def final_metrics(rec: dict, result, attrs: dict, baseline: tuple[float | None, float | None]
                  ) -> tuple[dict[str, float | None], dict[str, Any]]:
    """A trial's final metrics (objective values, result.json numbers, numeric user attrs, the comparison with
    the baseline's (score, params)) and the user attrs that are not numbers (logged as `attr.<name>` tags)."""
    finals: dict[str, float | None] = {}
    for i, value in enumerate(rec["values"] or []):
        finals["objective" if i == 0 else f"objective_{i}"] = finite(value)
    if result:
        for name, field in RESULT_METRICS.items():
            finals[name] = finite(getattr(result, field))
        if result.params and result.original_params:
            finals["param_ratio_vs_original"] = result.params / result.original_params
        if result.params and result.base_params:
            finals["param_growth_vs_base"] = result.params / result.base_params - 1.0
    tags: dict[str, Any] = {}
    for key, value in attrs.items():
        if key in ATTRS_NOT_LOGGED or value is None:
            continue
        if finite(value) is not None:
            finals[key if key not in EPOCH_METRICS else f"final_{key}"] = finite(value)
        else:
            tags[f"attr.{key}"] = value
    if finals.get("chosen_dendrites") is None and finite(attrs.get("dendrites")) is not None and not result:
        finals["chosen_dendrites"] = finite(attrs["dendrites"])  # a derived trial: its architecture's count
    base_score, base_params = baseline
    score, chosen = finite(attrs.get("score")), finite(attrs.get("chosen_params") or attrs.get("n_params"))
    if base_score is not None and score is not None:
        finals["score_vs_baseline"] = score - base_score
    if base_params and chosen:
        finals["param_growth_vs_baseline"] = chosen / base_params - 1.0
    return finals, tags


def sweep_metrics(summary: dict) -> dict[str, float]:
    """The parent run's headline numbers: best objective and best trial, and how many trials of each kind."""
    out: dict[str, float] = {}
    rows = {r.get("trial"): r for r in summary.get("trials") or [] if isinstance(r, dict)}
    best = [rows[n] for n in summary.get("best_trials") or [] if n in rows and rows[n].get("values")]
    if best:
        maximize = (summary.get("directions") or ["maximize"])[0] == "maximize"
        top = (max if maximize else min)(best, key=lambda r: r["values"][0])
        out["best_objective"] = float(top["values"][0])
        out["best_trial"] = float(top["trial"])
    for state, n in (summary.get("states") or {}).items():
        out[f"trials_{state}"] = float(n)
    for origin, n in (summary.get("origins") or {}).items():
        name = f"trials_{BAD_KEY.sub('_', origin.split(':')[0])}"  # rule:<id> counts as rule
        out[name] = out.get(name, 0.0) + float(n)
    return out


def quote(text: str) -> str:
    """Text inside '...' of an MLflow search filter."""
    return text.replace("\\", "\\\\").replace("'", "\\'")


def launch_tags(trial_dir: Path | None) -> dict[str, str]:
    """Launcher facts from launch.json: slurm.job_id / slurm.node on SLURM, launch.pid locally."""
    if not trial_dir:
        return {}
    try:
        launch = json.loads((trial_dir / trial_files.LAUNCH).read_text())
    except (OSError, ValueError):
        return {}
    kind = str(launch.get("launcher") or "")
    tags = {"launcher": kind} if kind else {}
    prefix = "slurm." if kind == "slurm" else "launch."
    for key in ("job_id", "node", "partition", "pid", "device"):
        if launch.get(key) not in (None, ""):
            tags[prefix + key] = str(launch[key])
    return tags
