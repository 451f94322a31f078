"""MLflow tracking: one parent run per sweep, one child run per trial. The only module that imports mlflow.

The driver is the only caller (workers never log), so a sqlite store is never written by
two processes. The driver's calls only queue: one background thread logs the queue in
order, so the sweep never waits for MLflow. Tracking never raises into the sweep: the
queue lives in ``<sweep dir>/tracking_backlog.jsonl`` until each item is logged, so what
cannot be logged (server down, store locked, driver killed) is retried on the next call,
at the end of the sweep (which waits for the queue), and when the sweep resumes. Logging is
idempotent: a child run is found again by its tags (parent run + trial number) and is not
logged twice.

mlflow is imported lazily (about 1.5 s), so validating a config or `pai-sweep --help` never pays for it.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlsplit

from pai_sweep import trial_files
from pai_sweep.errors import TrackingError
from pai_sweep.trial_files import atomic_write_text

BACKLOG = "tracking_backlog.jsonl"
TAG_ROLE = "pai_sweep.role"  # "sweep" (parent) or "trial" (child)
TAG_SWEEP_DIR = "pai_sweep.sweep_dir"  # the resolved sweep folder: finds the parent again on resume
TAG_TRIAL = "pai_sweep.trial"  # the Optuna trial number of a child run
TAG_DONE = "pai_sweep.logged"  # set last: a child without it was cut off and is logged again
PARENT_TAG = "mlflow.parentRunId"

# Per-epoch metric name -> EpochRecord field (logged with step = epoch).
EPOCH_METRICS = {"val": "val", "train": "train", "test": "test", "loss": "loss", "lr": "lr",
                 "params": "params", "dendrites": "dendrites", "epoch_seconds": "seconds"}
# Final metric name -> TrialResult field.
# grown_dendrites: what the run added (result.json); chosen_dendrites: the architecture its values are about.
RESULT_METRICS = {"best_val": "best_val", "best_test": "best_test", "final_val": "final_val",
                  "final_params": "params", "base_params": "base_params", "original_params": "original_params",
                  "grown_dendrites": "dendrites", "epochs": "epochs", "train_seconds": "seconds"}
# User attrs that repeat a metric above (objective_score is `objective`, n_params `final_params`, ...) or are a tag.
ATTRS_NOT_LOGGED = {"objective_score", "n_params", "seconds", "epochs", "best_val", "best_test", "dendrites",
                    "origin", "status", "reason", "parent", "rerun_of", "trial_dir"}
EXPERIMENT_KIND = ("mlflow.experimentKind", "custom_model_development")  # MLflow 3's UI: open in the training view
MAX_TAG = 5000  # a longer tag value goes to an artifact (tags/<name>.json) and the tag says where
ARTIFACTS_DIR = "mlartifacts"  # beside a sqlite store: where `mlflow ui`/`mlflow server` serve mlflow-artifacts:/ from
FINISHED_STATES = {"COMPLETE": "FINISHED", "FAIL": "FAILED", "PRUNED": "KILLED"}
ARTIFACTS = (("pai", ("*.csv", "*.png"), "pai"), ("analysis", ("findings.json", "report.md", "*.png"), "analysis"),
             (".", (trial_files.RUN_CONFIG, trial_files.RESULT, trial_files.METRICS, "analysis.json"), ""))
_DB_SCHEMES = ("postgresql", "mysql", "mssql")
_SCHEMES = ("http", "https", "sqlite", *_DB_SCHEMES, "databricks", "databricks-uc", "file")
_MAX_PARAM = 6000  # MLflow's limit on a parameter value
_BAD_KEY = re.compile(r"[^\w\-. /]")


# ---------------------------------------------------------------- configuration

def validate_tracking(tracking_cfg) -> str | None:
    """Check tracking.name and tracking.uri before the sweep starts; the URI to use (None: off).

    Raises TrackingError with one line naming the problem and the valid forms.
    """
    name = _get(tracking_cfg, "name", "mlflow")
    if name == "off":
        return None
    if name != "mlflow":
        raise TrackingError(f"tracking.name={name!r} is not known; valid values: mlflow, off")
    uri = _get(tracking_cfg, "uri")
    if uri is None:
        uri = os.environ.get("MLFLOW_TRACKING_URI") or None
    return None if uri is None else _check_uri(str(uri))


def _check_uri(uri: str) -> str:
    hint = ("use sqlite:///ABS/PATH/mlflow.db, http(s)://HOST:PORT, a database URL "
            "(postgresql://USER@HOST/DB), or null for MLflow's default sqlite mlflow.db in the working folder")
    bad = f"tracking.uri={uri!r} is not a valid tracking URI"
    if not uri or uri != uri.strip() or " " in uri:
        raise TrackingError(f"{bad} (empty or contains spaces); {hint}")
    if uri in ("databricks", "databricks-uc"):  # MLflow's names for a Databricks workspace
        return uri
    if "://" not in uri:
        raise TrackingError(f"{bad} (no scheme: a bare path would be MLflow's retired file store); {hint}")
    parts = urlsplit(uri)
    scheme = parts.scheme.split("+")[0]
    if scheme not in _SCHEMES:
        raise TrackingError(f"{bad} (unknown scheme {parts.scheme!r}; valid: {', '.join(_SCHEMES)}); {hint}")
    if scheme in ("http", "https", *_DB_SCHEMES):
        try:
            port_ok = parts.port is None or 0 < parts.port < 65536
        except ValueError:
            port_ok = False
        if not parts.hostname or not port_ok:
            raise TrackingError(f"{bad} (missing host or bad port); {hint}")
    if scheme == "sqlite":
        path = uri[len("sqlite:///"):] if uri.startswith("sqlite:///") else ""
        if not path or path.startswith(":memory:"):
            raise TrackingError(f"{bad} (sqlite needs a file: sqlite:///ABS/PATH/mlflow.db; an in-memory store loses the sweep)")
    if scheme == "file" and os.environ.get("MLFLOW_ALLOW_FILE_STORE", "").lower() != "true":
        raise TrackingError(f"{bad} (MLflow 3 retired the file store); {hint}")
    return uri


def make_tracker(tracking_cfg, experiment: str, sweep_dir: Path) -> "Tracker":
    """The tracker for a sweep: MlflowTracker, or a Tracker that does nothing when tracking=off."""
    name = _get(tracking_cfg, "name", "mlflow")
    uri = validate_tracking(tracking_cfg)
    if name == "off":
        return Tracker()
    return MlflowTracker(
        uri=uri,
        experiment=_get(tracking_cfg, "experiment") or experiment,
        sweep_dir=Path(sweep_dir),
        log_artifacts=bool(_get(tracking_cfg, "log_artifacts", True)),
        request_timeout=int(_get(tracking_cfg, "request_timeout", 10)),
        max_retries=int(_get(tracking_cfg, "max_retries", 1)),
    )


def _get(cfg, key: str, default: Any = None) -> Any:
    if cfg is None:
        return default
    value = cfg.get(key, default) if hasattr(cfg, "get") else getattr(cfg, key, default)
    return default if value is None else value


# ---------------------------------------------------------------- plain-data helpers

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
            out[_BAD_KEY.sub("_", name)[:250]] = text[:_MAX_PARAM]
    return out


def trial_record(trial) -> dict[str, Any]:
    """What the tracker needs from an Optuna FrozenTrial, as JSON-safe data (kept in the backlog)."""
    def ms(dt):
        return int(dt.timestamp() * 1000) if dt is not None else None

    return {
        "number": trial.number,
        "state": trial.state.name,
        "values": list(trial.values) if trial.values is not None else None,
        "params": {k: _jsonable(v) for k, v in trial.params.items()},
        "user_attrs": {k: _jsonable(v) for k, v in trial.user_attrs.items()},
        "start_ms": ms(trial.datetime_start),
        "end_ms": ms(trial.datetime_complete),
    }


def _jsonable(value: Any) -> Any:
    try:
        json.dumps(value)
        return value
    except (TypeError, ValueError):
        return str(value)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


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


# ---------------------------------------------------------------- trackers

class Tracker:
    """The interface the driver calls; this base records nothing (tracking=off)."""

    enabled = False
    uri: str | None = None

    def start_sweep(self, config: dict) -> None:
        """Open (or on resume, reopen) the sweep's parent run with the flattened config as params."""

    def log_trial(self, study_trial, trial_dir: Path | None = None) -> None:
        """Log one finished trial as a child run (sampler, rule-enqueued, derived or baseline)."""

    def finish_sweep(self, summary: dict, report_dir: Path | None = None) -> None:
        """Log the sweep summary and report folder to the parent run and close it."""

    def close(self) -> None:
        """Last retry of the backlog; says in one line what is still not logged."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class MlflowTracker(Tracker):
    enabled = True

    def __init__(self, uri: str | None, experiment: str, sweep_dir: Path, log_artifacts: bool = True,
                 request_timeout: int = 10, max_retries: int = 1, say: Callable[[str], None] | None = None):
        self.sweep_dir = Path(sweep_dir).resolve()
        self.experiment = experiment
        self.log_artifacts = log_artifacts
        self.say = say or (lambda line: print(f"pai-sweep: tracking: {line}", file=sys.stderr, flush=True))
        self.backlog_path = self.sweep_dir / BACKLOG
        self.backlog: list[dict] = _read_backlog(self.backlog_path)
        # MLflow's default store, fixed now: the folder the sweep was started in, whatever happens later.
        # (An old ./mlruns with runs makes MLflow pick its file store instead: leave that choice to MLflow.)
        self._uri = uri or (None if (Path.cwd() / "mlruns").is_dir() else f"sqlite:///{Path.cwd() / 'mlflow.db'}")
        # MLflow retries 7 times with growing backoff by default: minutes per call against a dead
        # server. Its only knobs are environment variables; set them around our calls only, and
        # never over what the user exported.
        wanted = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": str(max_retries), "MLFLOW_HTTP_REQUEST_TIMEOUT": str(request_timeout),
                  "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1"}
        self._http_env = {k: v for k, v in wanted.items() if k not in os.environ}
        self._client = None
        self._experiment_id: str | None = None
        self._parent_id: str | None = None
        self._git = git_commit()
        self._failing = False
        self._told: list[str] = []  # what close() last said was not logged
        self._refused: set[str] = set()  # items the store refused (said once each)
        self._baseline: tuple[float | None, float | None] = (None, None)  # (score, params) once the baseline is logged
        self._lock = threading.Lock()  # guards backlog (driver thread adds, the logging thread removes)
        self._cv = threading.Condition()
        self._requested = self._served = 0  # kicks asked for / kicks the logging thread has worked through
        self._stopping = False
        self._thread: threading.Thread | None = None

    # -- the driver's calls: each one queues its item and returns; a background thread logs the
    # queue in order, so the sweep never waits for MLflow (store creation alone takes seconds).

    @property
    def uri(self) -> str:
        if self._uri is None:
            import mlflow

            quiet_third_party()
            self._uri = mlflow.get_tracking_uri()  # MLflow's default: sqlite:///<cwd>/mlflow.db
        return self._uri

    def start_sweep(self, config: dict) -> None:
        self._submit({"op": "sweep", "config": flatten(config)})

    def log_trial(self, study_trial, trial_dir: Path | None = None) -> None:
        record = study_trial if isinstance(study_trial, dict) else trial_record(study_trial)
        self._submit({"op": "trial", "trial": record, "trial_dir": str(Path(trial_dir).resolve()) if trial_dir else None})

    def finish_sweep(self, summary: dict, report_dir: Path | None = None) -> None:
        self._submit({"op": "finish", "summary": {k: _jsonable(v) for k, v in (summary or {}).items()},
                      "report_dir": str(Path(report_dir).resolve()) if report_dir else None})
        self.close()  # the sweep is over: say now what did not reach the store

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything queued so far was tried once (logged, or kept after a failure)."""
        with self._cv:
            target = self._requested
            return self._cv.wait_for(lambda: self._served >= target, timeout)

    def close(self) -> None:
        self._kick()  # one more try for what failed before
        self.flush()
        with self._cv:
            self._stopping = True
            self._cv.notify_all()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        pending = self.pending()
        if pending and self._told != pending:
            self._told = pending
            self.say(f"{len(pending)} item(s) not logged to {self._uri or 'the default store'} "
                     f"({', '.join(pending)}); they wait in {self.backlog_path} and are logged when the sweep resumes")

    def pending(self) -> list[str]:
        """What is queued and not logged yet, e.g. ["trial 3", "sweep end"]."""
        with self._lock:
            return [_describe(item) for item in self.backlog]

    # -- queue

    def _submit(self, item: dict) -> None:
        key = _item_key(item)
        with self._lock:
            self.backlog = [i for i in self.backlog if _item_key(i) != key] + [item]
            self._save_backlog()  # on disk before it is tried: a driver killed now loses nothing
        self._kick()

    def _kick(self) -> None:
        with self._cv:
            self._requested += 1
            self._stopping = False
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._work, name="pai-sweep-tracking", daemon=True)
                self._thread.start()
            self._cv.notify_all()

    def _work(self) -> None:
        while True:
            with self._cv:
                self._cv.wait_for(lambda: self._served < self._requested or self._stopping)
                if self._served >= self._requested:
                    return  # stopping, nothing left to try
                target = self._requested
            try:
                self._drain()
            except Exception as exc:  # a bug here must not kill the thread silently
                self.say(f"tracking stopped logging: {type(exc).__name__}: {_first_line(exc)}")
            with self._cv:
                self._served = target
                self._cv.notify_all()

    def _drain(self) -> None:
        done = 0
        refused: list[dict] = []
        while True:
            with self._lock:
                item = next((i for i in self.backlog if not any(i is r for r in refused)), None)
            if item is None:
                break
            try:
                self._apply(item)
            except Exception as exc:  # any store failure: keep the item, the sweep goes on
                if _transient(exc):
                    if not self._failing:
                        self.say(f"{_describe(item)} not logged to {self._uri or 'the default store'} "
                                 f"({type(exc).__name__}: {_first_line(exc)}); queued in {self.backlog_path}, retried on the next call")
                    self._failing = True
                    return
                # The store refused this item itself: keep it for a later look, do not block the rest.
                if _item_key(item) not in self._refused:
                    self._refused.add(_item_key(item))
                    self.say(f"{_describe(item)} refused by {self._uri or 'the default store'} ({_first_line(exc)}); kept in {self.backlog_path}")
                refused.append(item)
                continue
            with self._lock:
                self.backlog = [i for i in self.backlog if i is not item]
                self._save_backlog()
            done += 1
        if done and self._failing:
            self.say("caught up: the store answers again, queued items logged")
        self._failing = False

    def _save_backlog(self) -> None:
        if not self.backlog:
            self.backlog_path.unlink(missing_ok=True)
            return
        self.sweep_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.backlog_path, "".join(json.dumps(i) + "\n" for i in self.backlog))

    def _apply(self, item: dict) -> None:
        saved = {k: os.environ.get(k) for k in self._http_env}
        os.environ.update(self._http_env)
        try:
            self._apply_now(item)
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value

    def _apply_now(self, item: dict) -> None:
        if item["op"] == "sweep":
            self._open_parent(item["config"])
        elif item["op"] == "trial":
            self._open_parent({})
            self._log_child(item["trial"], Path(item["trial_dir"]) if item["trial_dir"] else None)
        else:
            self._open_parent({})
            self._finish_parent(item["summary"], Path(item["report_dir"]) if item["report_dir"] else None)

    # -- MLflow

    def open_command(self) -> str:
        """The command that shows this sweep's runs: `mlflow ui ...` for a sqlite store, the server's address otherwise."""
        uri = self.uri
        if uri.startswith("sqlite:///"):
            folder = Path(uri[len("sqlite:///"):]).parent
            return f"mlflow ui --backend-store-uri {uri} --artifacts-destination {folder / ARTIFACTS_DIR}"
        if uri.startswith(("http://", "https://")):
            return f"open {uri} (experiment {self.experiment})"
        return f"mlflow ui --backend-store-uri {uri}"

    def _mlflow(self):
        if self._client is None:
            from mlflow.tracking import MlflowClient

            quiet_third_party()  # after the import: importing mlflow sets its logger to INFO

            uri = self.uri
            if uri.startswith("sqlite:///"):
                Path(uri[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
            self._client = MlflowClient(tracking_uri=uri)
        return self._client

    def _experiment(self) -> str:
        if self._experiment_id is None:
            client = self._mlflow()
            exp = client.get_experiment_by_name(self.experiment)
            if exp is None:
                location = None
                if self.uri.startswith("sqlite:///"):
                    # A proxied location, not an absolute file URI: the files go to <db folder>/mlartifacts/, and
                    # `mlflow ui` (or `mlflow server --artifacts-destination <db folder>/mlartifacts`) serves them
                    # from wherever the folder is now, so a moved or copied folder keeps its artifacts.
                    location = f"mlflow-artifacts:/{_BAD_KEY.sub('_', self.experiment).replace(' ', '_')}"
                self._experiment_id = client.create_experiment(self.experiment, artifact_location=location,
                                                               tags=dict([EXPERIMENT_KIND]))
            else:
                if exp.lifecycle_stage == "deleted":
                    client.restore_experiment(exp.experiment_id)
                self._experiment_id = exp.experiment_id
                if exp.tags.get(EXPERIMENT_KIND[0]) is None:
                    client.set_experiment_tag(exp.experiment_id, *EXPERIMENT_KIND)
        return self._experiment_id

    def _local_artifacts(self, run_id: str) -> Path | None:
        """The folder a run's artifacts are copied into when MLflow cannot upload them itself: a proxied
        (mlflow-artifacts:/) location on a sqlite store, served later by `mlflow ui` from <db folder>/mlartifacts."""
        return local_artifact_dir(self.uri, self._mlflow().get_run(run_id).info.artifact_uri)

    def _log_files(self, run_id: str, files: list[tuple[Path, str]]) -> None:
        """(file, folder inside the run) pairs as the run's artifacts."""
        import shutil

        local = self._local_artifacts(run_id) if files else None
        for path, dest in files:
            if local is None:
                self._mlflow().log_artifact(run_id, str(path), dest or None)
            else:
                target = local / dest if dest else local
                target.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, target / path.name)

    def _tags_and_files(self, run_id: str, tags: dict[str, Any]) -> dict[str, str]:
        """Tag values as text; a value over MAX_TAG characters is written whole to tags/<name>.json (or .txt)
        and its tag says where, so a JSON tag is never cut into something json.loads refuses."""
        import tempfile

        out: dict[str, str] = {}
        spill: list[tuple[Path, str]] = []
        tmp = Path(tempfile.mkdtemp(prefix="pai-sweep-tags-"))
        try:
            for name, value in tags.items():
                text = value if isinstance(value, str) else json.dumps(value)
                if len(text) <= MAX_TAG:
                    out[name] = text
                    continue
                path = tmp / (_BAD_KEY.sub("_", name) + (".txt" if isinstance(value, str) else ".json"))
                path.write_text(text)
                spill.append((path, "tags"))
                out[name] = f"artifact tags/{path.name} ({len(text):,} characters)"
            self._log_files(run_id, spill)
        finally:
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)
        return out

    def _search(self, filter_string: str):
        return self._mlflow().search_runs([self._experiment()], filter_string=filter_string, max_results=50)

    def _open_parent(self, params: dict[str, str]) -> None:
        from mlflow.entities import Param

        client = self._mlflow()
        if self._parent_id is None:
            found = self._search(f"tags.`{TAG_SWEEP_DIR}` = '{_quote(str(self.sweep_dir))}' and tags.`{TAG_ROLE}` = 'sweep'")
            if found:
                self._parent_id = found[0].info.run_id
                if found[0].info.status != "RUNNING":
                    client.update_run(self._parent_id, status="RUNNING")
            else:
                tags = {TAG_ROLE: "sweep", TAG_SWEEP_DIR: str(self.sweep_dir), **self._git}
                self._parent_id = client.create_run(self._experiment(), tags=tags, run_name=self.sweep_dir.name).info.run_id
        if params:
            # A resumed sweep keeps its first values (MLflow refuses to change a logged param).
            have = client.get_run(self._parent_id).data.params
            new = [Param(k, v) for k, v in params.items() if k not in have]
            if new:
                client.log_batch(self._parent_id, params=new)

    def _log_child(self, rec: dict, trial_dir: Path | None) -> None:
        from mlflow.entities import Metric, Param, RunTag

        client = self._mlflow()
        number = rec["number"]
        attrs = rec["user_attrs"]
        origin = str(attrs.get("origin", "sampler"))
        if origin == "baseline" and rec["values"]:
            self._baseline = (_number(attrs.get("score", rec["values"][0])), _number(attrs.get("chosen_params") or attrs.get("n_params")))
        for run in self._search(f"tags.`{PARENT_TAG}` = '{self._parent_id}' and tags.`{TAG_TRIAL}` = '{number}'"):
            if run.data.tags.get(TAG_DONE) == "true":
                return  # logged before (resume): never twice
            client.delete_run(run.info.run_id)  # cut off half-way: log it again from scratch
        # A derived trial is a row of its parent's best-architecture table: it has the parent's
        # folder (for the config) but none of its own epochs, results or files.
        derived = origin == "derived"
        own_dir = None if derived else trial_dir
        result = trial_files.read_result(own_dir) if own_dir else None
        tags = {PARENT_TAG: self._parent_id, TAG_ROLE: "trial", TAG_TRIAL: str(number), TAG_SWEEP_DIR: str(self.sweep_dir),
                "origin": origin, "optuna.state": rec["state"], **self._git, **_launch_tags(own_dir)}
        tags["status"] = str(attrs.get("status") or (result.status if result else rec["state"].lower()))
        reason = attrs.get("reason") or (result.reason if result else None)
        if origin.startswith("rule:"):
            tags["rule"] = origin[len("rule:"):]
        if attrs.get("parent") is not None:
            tags["parent_trial"] = str(attrs["parent"])
        if attrs.get("rerun_of") is not None:
            tags["rerun_of"] = str(attrs["rerun_of"])
        run_id = client.create_run(self._experiment(), start_time=rec["start_ms"], tags=tags, run_name=f"trial-{number}").info.run_id

        params = flatten(_read_yaml(trial_dir / trial_files.RUN_CONFIG)) if trial_dir else {}
        for key, value in rec["params"].items():  # the trial's own search values win (derived: its dendrite count)
            params[_BAD_KEY.sub("_", key)] = str(value)[:_MAX_PARAM]
        now = int(time.time() * 1000)
        metrics = [Metric(name, value, now, record.epoch)
                   for record in (trial_files.read_metrics(own_dir) if own_dir else [])
                   for name, field in EPOCH_METRICS.items()
                   if (value := _number(getattr(record, field))) is not None]
        finals, more_tags = self._final_metrics(rec, result, attrs)
        if reason:
            more_tags["reason"] = str(reason)
        metrics += [Metric(_BAD_KEY.sub("_", k), v, now, 0) for k, v in finals.items() if v is not None]
        more_tags = self._tags_and_files(run_id, more_tags)
        client.log_batch(run_id, metrics=metrics, params=[Param(k, v) for k, v in params.items()],
                         tags=[RunTag(k, v) for k, v in more_tags.items()])
        if self.log_artifacts and own_dir:
            self._log_files(run_id, [(path, dest) for sub, patterns, dest in ARTIFACTS
                                     for path in sorted({p for pat in patterns for p in (own_dir / sub).glob(pat) if p.is_file()})])
        if rec["state"] in FINISHED_STATES:
            client.set_terminated(run_id, FINISHED_STATES[rec["state"]], end_time=rec["end_ms"])
            client.set_tag(run_id, TAG_DONE, "true")
        else:
            client.set_terminated(run_id, "KILLED")  # not finished yet: logged again once it is

    def _final_metrics(self, rec: dict, result, attrs: dict) -> tuple[dict[str, float | None], dict[str, str]]:
        """Objective values, result.json numbers, numeric user attrs, and the comparison with the baseline."""
        finals: dict[str, float | None] = {}
        for i, value in enumerate(rec["values"] or []):
            finals["objective" if i == 0 else f"objective_{i}"] = _number(value)
        if result:
            for name, field in RESULT_METRICS.items():
                finals[name] = _number(getattr(result, field))
            if result.params and result.original_params:
                finals["param_ratio_vs_original"] = result.params / result.original_params
            if result.params and result.base_params:
                finals["param_growth_vs_base"] = result.params / result.base_params - 1.0
        tags: dict[str, Any] = {}
        for key, value in attrs.items():
            if key in ATTRS_NOT_LOGGED or value is None:
                continue
            if _number(value) is not None:
                finals[key if key not in EPOCH_METRICS else f"final_{key}"] = _number(value)
            else:
                tags[f"attr.{key}"] = value
        if finals.get("chosen_dendrites") is None and _number(attrs.get("dendrites")) is not None and not result:
            finals["chosen_dendrites"] = _number(attrs["dendrites"])  # a derived trial: its architecture's count
        base_score, base_params = self._baseline
        score, chosen = _number(attrs.get("score")), _number(attrs.get("chosen_params") or attrs.get("n_params"))
        if base_score is not None and score is not None:
            finals["score_vs_baseline"] = score - base_score
        if base_params and chosen:
            finals["param_growth_vs_baseline"] = chosen / base_params - 1.0
        return finals, tags

    def _finish_parent(self, summary: dict, report_dir: Path | None) -> None:
        from mlflow.entities import Metric, RunTag

        client = self._mlflow()
        now = int(time.time() * 1000)
        numbers = {f"sweep.{k}": _number(v) for k, v in summary.items() if _number(v) is not None}
        numbers.update(sweep_metrics(summary))
        metrics = [Metric(k, v, now, 0) for k, v in numbers.items()]
        tags = self._tags_and_files(self._parent_id, {f"sweep.{k}": v for k, v in summary.items() if _number(v) is None and v is not None})
        client.log_batch(self._parent_id, metrics=metrics, tags=[RunTag(k, v) for k, v in tags.items()])
        if report_dir and report_dir.is_dir() and self.log_artifacts:
            self._log_files(self._parent_id, [(p, str(Path("report") / p.parent.relative_to(report_dir)))
                                              for p in sorted(report_dir.rglob("*")) if p.is_file()])
        client.set_terminated(self._parent_id, "FINISHED")


def quiet_third_party() -> None:
    """MLflow's and alembic's INFO lines ("Creating initial MLflow database tables...") stay out of the progress
    lines; PAI_SWEEP_VERBOSE=1 (or `pai-sweep -v`) keeps them."""
    import logging

    if os.environ.get("PAI_SWEEP_VERBOSE", "") not in ("", "0"):
        return
    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)


def local_artifact_dir(uri: str, artifact_uri: str) -> Path | None:
    """Where a run of a sqlite store keeps its artifacts on disk (<db folder>/mlartifacts/...), for reading them
    from Python without a server; None for other stores (use MlflowClient.list_artifacts / download_artifacts)."""
    if not (artifact_uri.startswith("mlflow-artifacts:") and uri.startswith("sqlite:///")):
        return None
    return Path(uri[len("sqlite:///"):]).parent / ARTIFACTS_DIR / artifact_uri[len("mlflow-artifacts:"):].lstrip("/")


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
        name = f"trials_{_BAD_KEY.sub('_', origin.split(':')[0])}"  # rule:<id> counts as rule
        out[name] = out.get(name, 0.0) + float(n)
    return out


# ---------------------------------------------------------------- small helpers

def _item_key(item: dict) -> str:
    return f"trial:{item['trial']['number']}" if item["op"] == "trial" else item["op"]


def _describe(item: dict) -> str:
    return {"sweep": "sweep start", "finish": "sweep end"}.get(item["op"]) or f"trial {item['trial']['number']}"


def _transient(exc: BaseException) -> bool:
    """Server down, timeout, locked database: worth retrying. A refused value is not."""
    code = getattr(exc, "error_code", None)
    return code not in ("INVALID_PARAMETER_VALUE", "RESOURCE_ALREADY_EXISTS", "RESOURCE_DOES_NOT_EXIST", "BAD_REQUEST", "INVALID_STATE")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else "")[:200]


def _quote(text: str) -> str:
    return text.replace("\\", "\\\\").replace("'", "\\'")


def _read_backlog(path: Path) -> list[dict]:
    items = []
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                items.append(json.loads(line))
            except ValueError:
                continue  # a torn last line: that item was not saved
    return items


def _read_yaml(path: Path) -> dict:
    import yaml

    try:
        return yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError):
        return {}


def _launch_tags(trial_dir: Path | None) -> dict[str, str]:
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
