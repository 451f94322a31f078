"""The files one trial folder holds: the seam between driver, worker, launchers and analysis.

A trial lives in ``<sweep dir>/trials/<number>/``::

    run.yaml        the resolved run config (model, downsize, dendrites, data, train, seed)
    pai/            PerforatedAI's own output (save_name "pai"; the worker's cwd is the trial dir)
    metrics.jsonl   one JSON object per epoch, appended by the worker (see EpochRecord)
    result.json     the completion record (see TrialResult), written atomically, last
    launch.json     how the launcher started it (pid / SLURM job id), for re-attaching on resume
    resume_state.pt the last resume point while it trains (train.resume), removed at the end
    branch/         the state before the first switch, for trials that share that prefix (branching.py)
    branch-*/       later start points: after-switch-<k>, at-cap (branching.py)
    worker.log      the worker's stdout and stderr

result.json is the only proof that a trial finished: PerforatedAI can exit 0 on failure.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

RUN_CONFIG = "run.yaml"
PAI_SAVE_NAME = "pai"
METRICS = "metrics.jsonl"
RESULT = "result.json"
LAUNCH = "launch.json"
WORKER_LOG = "worker.log"
RESUME_FILE = "resume_state.pt"  # the sidecar of the last resume point (train.resume); the model is pai/resume<k>.pt
RESUME_MODELS = ("resume.pt", "resume0.pt", "resume1.pt", "branch.pt")  # in pai/: a point's model (save_system), any name

# TrialResult.status values
STATUS_COMPLETE = "complete"  # trained to PerforatedAI's completion or the epoch cap
STATUS_FAILED = "failed"  # crashed, trapped, NaN, timed out, cancelled: see reason
STATUS_PRUNED = "pruned"  # stopped early by the driver's pruner
STATUSES = (STATUS_COMPLETE, STATUS_FAILED, STATUS_PRUNED)


@dataclass
class EpochRecord:
    """One line of metrics.jsonl: what the worker saw at the end of one epoch."""

    epoch: int  # 0-based count of epochs run by the worker (not PerforatedAI's renumbered one)
    val: float  # the validation score handed to add_validation_score
    train: float | None = None
    test: float | None = None
    loss: float | None = None  # mean training loss of the epoch
    lr: float | None = None
    params: int | None = None  # parameter count after this epoch's add_validation_score
    dendrites: int = 0  # dendrites in the model after this epoch
    restructured: bool = False  # PerforatedAI restructured the model at this epoch
    seconds: float = 0.0  # wall seconds of this epoch (train + eval + tracker)
    compute_seconds: float | None = None  # of which the training function's own (train + eval, no tracker, no files)


@dataclass
class TrialResult:
    """result.json: written once, at the very end of a trial (or by the driver on failure)."""

    status: str  # one of STATUSES
    reason: str  # one line: why it ended ("pai_complete", "epoch_cap", or the failure)
    best_val: float | None = None  # best validation score seen
    best_test: float | None = None  # test score at the epoch of best_val
    final_val: float | None = None
    params: int | None = None  # parameters of the final (best) model
    base_params: int | None = None  # parameters of the model handed to perforate (after downsizing)
    original_params: int | None = None  # parameters before downsizing
    dendrites: int = 0  # dendrites in the final model
    epochs: int = 0
    seconds: float = 0.0
    maximizing: bool = True
    extra: dict[str, Any] = field(default_factory=dict)  # launcher facts (job id, node, log), diagnosis
    # what the worker really built, for the driver to compare with what the study records (sweep/verify.py):
    # model (the ModelConfig fields the builder read, after downsizing), downsize (the fields applied),
    # params, original_params, perforated (module path -> class), knobs (read back from PerforatedAI)
    built: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == STATUS_COMPLETE


def jsonable(value: Any) -> Any:
    """Plain JSON values from dataclasses, numpy scalars, tuples and paths; NaN/inf and pandas' NA become null.

    JSON has no NaN, so every reader of result.json, metrics.jsonl, findings.json and the
    study's user attributes can parse what this returns.
    """
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return jsonable(dataclasses.asdict(value))
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):  # numpy scalars
        try:
            value = value.item()
        except (TypeError, ValueError):
            return str(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, (str, int, bool)):
        return value
    if type(value).__name__ == "NAType":  # pandas.NA
        return None
    return str(value)


def atomic_write_text(path: Path, text: str) -> None:
    """Write then rename, so a reader never sees half a file (also on a shared file system). A write the file
    system refuses (disk full, read-only) leaves no temporary file and raises an OSError naming `path`."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    except OSError as exc:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from exc


def drop_resume_point(trial_dir: Path) -> None:
    """Remove a trial's resume point (its sidecar and the models it names): once it no longer fits, or the trial ended."""
    for path in (Path(trial_dir) / RESUME_FILE, *(Path(trial_dir) / PAI_SAVE_NAME / name for name in RESUME_MODELS)):
        path.unlink(missing_ok=True)


def read_yaml(path: Path) -> dict:
    """A YAML file's mapping (run.yaml, config.yaml), or {} when it is missing or unreadable."""
    import yaml

    try:
        return yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError):
        return {}


def write_json(path: Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(jsonable(data), indent=2, sort_keys=True) + "\n")


def write_result(trial_dir: Path, result: TrialResult) -> None:
    write_json(Path(trial_dir) / RESULT, dataclasses.asdict(result))


def read_result(trial_dir: Path) -> TrialResult | None:
    """The trial's completion record, or None when it has not finished (or the file is unreadable)."""
    path = Path(trial_dir) / RESULT
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):  # UnicodeDecodeError is a ValueError
        return None
    if not isinstance(data, dict) or not isinstance(data.get("reason", ""), str):
        return None
    known = {f.name for f in dataclasses.fields(TrialResult)}
    extra = dict(data.get("extra") or {})
    extra.update({k: v for k, v in data.items() if k not in known})
    data = {k: v for k, v in data.items() if k in known}
    data["extra"] = extra
    if data.get("status") not in STATUSES:
        return None
    data.setdefault("reason", "")
    try:
        return TrialResult(**data)
    except TypeError:
        return None


def append_metrics(trial_dir: Path, record: EpochRecord) -> None:
    with open(Path(trial_dir) / METRICS, "a") as fh:
        fh.write(json.dumps(jsonable(record)) + "\n")
        fh.flush()


def iter_metrics(trial_dir: Path) -> Iterator[EpochRecord]:
    """Epoch records so far; a half-written last line (worker still writing) is skipped."""
    path = Path(trial_dir) / METRICS
    if not path.exists():
        return
    known = {f.name for f in dataclasses.fields(EpochRecord)}
    with open(path, errors="replace") as fh:  # binary garbage is a line that does not parse, not a crash
        for line in fh:
            try:
                data = json.loads(line)
            except ValueError:
                continue
            if not isinstance(data, dict) or not isinstance(data.get("epoch"), int) or not _is_number(data.get("val")):
                continue  # not an epoch record
            yield EpochRecord(**{k: v for k, v in data.items() if k in known})


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def finite(value: Any, loose: bool = False) -> float | None:
    """`value` as a finite float, else None (NaN, inf, None, text). Only an int or a float counts (not a bool);
    loose: anything float() takes (numpy scalars, numeric text, bools)."""
    if not loose and not _is_number(value):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def read_metrics(trial_dir: Path) -> list[EpochRecord]:
    return list(iter_metrics(trial_dir))


def clean_partial(trial_dir: Path) -> bool:
    """Remove what an interrupted earlier attempt left (pai/, metrics.jsonl). True if there was any."""
    found = False
    for name in (PAI_SAVE_NAME, METRICS, RESUME_FILE):
        path = trial_dir / name
        if path.is_dir():
            shutil.rmtree(path)
            found = True
        elif path.exists():
            path.unlink()
            found = True
    return found
