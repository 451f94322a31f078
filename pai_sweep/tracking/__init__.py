"""MLflow tracking: one parent run per sweep, one child run per trial.

The driver is the only caller (workers never log), so a sqlite store is never written by
two processes. The driver's calls only queue: one background thread logs the queue in
order, so the sweep never waits for MLflow. Tracking never raises into the sweep: the
queue lives in ``<sweep dir>/tracking_backlog.jsonl`` until each item is logged, so what
cannot be logged (server down, store locked, driver killed) is retried on the next call,
at the end of the sweep (which waits for the queue), and when the sweep resumes. Logging is
idempotent: a child run is found again by its tags (parent run + trial number) and is not
logged twice.

    uri.py         tracking.name / tracking.uri checks; where a sqlite store keeps artifacts (no mlflow)
    records.py     plain data: flattened params, trial records, metrics, git and launcher tags (no mlflow)
    backlog.py     the durable queue and its logging thread (no mlflow)
    base.py        Tracker, the interface (and tracking=off)
    mlflow_map.py  MlflowTracker: the sweep mapped onto MLflow runs (the only mlflow import, lazily)

mlflow is imported lazily (about 1.5 s), so validating a config or `pai-sweep --help` never pays for it.
"""

from __future__ import annotations

from pathlib import Path

from pai_sweep.tracking.backlog import BACKLOG
from pai_sweep.tracking.base import Tracker
from pai_sweep.tracking.mlflow_map import (
    ARTIFACTS,
    EXPERIMENT_KIND,
    FINISHED_STATES,
    MAX_TAG,
    PARENT_TAG,
    TAG_DONE,
    TAG_ROLE,
    TAG_SWEEP_DIR,
    TAG_TRIAL,
    MlflowTracker,
    quiet_third_party,
)
from pai_sweep.tracking.records import (
    ATTRS_NOT_LOGGED,
    EPOCH_METRICS,
    RESULT_METRICS,
    flatten,
    git_commit,
    sweep_metrics,
    trial_record,
)
from pai_sweep.tracking.uri import ARTIFACTS_DIR, local_artifact_dir, setting, validate_tracking

__all__ = [
    "ARTIFACTS", "ARTIFACTS_DIR", "ATTRS_NOT_LOGGED", "BACKLOG", "EPOCH_METRICS", "EXPERIMENT_KIND", "FINISHED_STATES",
    "MAX_TAG", "PARENT_TAG", "RESULT_METRICS", "TAG_DONE", "TAG_ROLE", "TAG_SWEEP_DIR", "TAG_TRIAL",
    "MlflowTracker", "Tracker", "flatten", "git_commit", "local_artifact_dir", "make_tracker", "quiet_third_party",
    "sweep_metrics", "trial_record", "validate_tracking",
]


def make_tracker(tracking_cfg, experiment: str, sweep_dir: Path) -> Tracker:
    """The tracker for a sweep: MlflowTracker, or a Tracker that does nothing when tracking=off."""
    name = setting(tracking_cfg, "name", "mlflow")
    uri = validate_tracking(tracking_cfg)
    if name == "off":
        return Tracker()
    return MlflowTracker(
        uri=uri,
        experiment=setting(tracking_cfg, "experiment") or experiment,
        sweep_dir=Path(sweep_dir),
        log_artifacts=bool(setting(tracking_cfg, "log_artifacts", True)),
        request_timeout=int(setting(tracking_cfg, "request_timeout", 10)),
        max_retries=int(setting(tracking_cfg, "max_retries", 1)),
        max_tag=MAX_TAG,  # read here, at call time: pai_sweep.tracking.MAX_TAG is the setting to change
    )
