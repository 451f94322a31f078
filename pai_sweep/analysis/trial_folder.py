"""What pai-sweep's own files in a trial folder add to a RunHistory read from its PerforatedAI output:
the worker's per-epoch records (metrics.jsonl), the completion record (result.json) and the run's settings
(run.yaml). analysis/reader.py reads the library's CSVs and calls add_trial_files for a trial folder."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd
import yaml

from pai_sweep import trial_files
from pai_sweep.analysis.history import RunHistory

TRIAL_FILES = (trial_files.RUN_CONFIG, trial_files.METRICS, trial_files.RESULT)  # any of them: a pai-sweep trial folder


def add_trial_files(hist: RunHistory, trial_dir: Path) -> None:
    """metrics.jsonl, result.json and run.yaml of `trial_dir` into `hist` (what ended the run, the settings); each
    file that cannot be read is named in hist.missing and left out, never an error."""
    hist.trial_dir = trial_dir
    records = trial_files.read_metrics(trial_dir)
    metrics_path = trial_dir / trial_files.METRICS
    if records:
        hist.metrics = pd.DataFrame([dataclasses.asdict(r) for r in records])
    elif metrics_path.exists() and metrics_path.stat().st_size > 0:
        hist.missing.append(f"{metrics_path}: no line is a JSON epoch record (the file is corrupt); "
                            "no per-epoch worker records, left out of the analysis")
    else:
        hist.missing.append(f"{trial_files.METRICS} is missing or empty: no per-epoch worker records")
    result = trial_files.read_result(trial_dir)
    if result is None and (trial_dir / trial_files.RESULT).exists():
        hist.missing.append(f"{trial_dir / trial_files.RESULT}: not a readable completion record; left out of the analysis")
    if result is not None:
        hist.result = dataclasses.asdict(result)
        if result.status != trial_files.STATUS_COMPLETE:
            hist.ended_by = result.status  # failed or pruned
        elif result.reason == "epoch_cap":
            hist.ended_by = "epoch_cap"
        elif hist.ended_by == "unknown":
            hist.ended_by = "pai_complete"
    cfg_path = trial_dir / trial_files.RUN_CONFIG
    if cfg_path.exists():
        try:
            cfg = yaml.safe_load(cfg_path.read_text())
        except (yaml.YAMLError, OSError, ValueError) as exc:  # UnicodeDecodeError is a ValueError
            hist.missing.append(f"{cfg_path}: not readable YAML ({type(exc).__name__}): the run's settings are unknown")
            return
        if not _settings_shape(cfg):
            hist.missing.append(f"{cfg_path}: not a run config (a mapping of dendrites/train settings): the run's settings are unknown")
            return
        hist.run_config = cfg or {}


def _settings_shape(cfg) -> bool:
    """run.yaml as RuleContext reads it: a mapping whose dendrites, train and train.optimizer/scheduler are mappings."""
    if cfg is None:
        return True
    if not isinstance(cfg, dict):
        return False
    d, t = cfg.get("dendrites") or {}, cfg.get("train") or {}
    if not isinstance(d, dict) or not isinstance(t, dict):
        return False
    return all(isinstance(t.get(k) or {}, dict) and isinstance((t.get(k) or {}).get("args") or {}, dict)
               for k in ("optimizer", "scheduler"))
