"""The MLflow side of tracking: one parent run per sweep, one child run per trial. The only mlflow import.

MlflowTracker maps a sweep onto MLflow: the parent run (found again by its sweep-folder tag on resume), a child
run per trial found again by its tags (parent run + trial number) so it is never logged twice, params from the
trial's run.yaml, per-epoch and final metrics, tags (long ones become artifacts) and the trial's files. The
driver's calls only queue (backlog.py); the queue's thread calls `_apply_now`. mlflow is imported lazily
(about 1.5 s), so validating a config or `pai-sweep --help` never pays for it.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable

from pai_sweep import trial_files
from pai_sweep.tracking.backlog import BACKLOG, Backlog
from pai_sweep.tracking.base import Tracker
from pai_sweep.tracking.records import (
    BAD_KEY,
    EPOCH_METRICS,
    MAX_PARAM,
    START_TAGS,
    final_metrics,
    flatten,
    git_commit,
    launch_tags,
    quote,
    sweep_params,
    sweep_metrics,
    trial_record,
)
from pai_sweep.tracking.uri import ARTIFACTS_DIR, local_artifact_dir
from pai_sweep.trial_files import finite, jsonable, read_yaml

TAG_ROLE = "pai_sweep.role"  # "sweep" (parent) or "trial" (child)
TAG_SWEEP_DIR = "pai_sweep.sweep_dir"  # the resolved sweep folder: finds the parent again on resume
TAG_TRIAL = "pai_sweep.trial"  # the Optuna trial number of a child run
TAG_DONE = "pai_sweep.logged"  # set last: a child without it was cut off and is logged again
PARENT_TAG = "mlflow.parentRunId"
EXPERIMENT_KIND = ("mlflow.experimentKind", "custom_model_development")  # MLflow 3's UI: open in the training view
MAX_TAG = 5000  # a longer tag value goes to an artifact (tags/<name>.json) and the tag says where
FINISHED_STATES = {"COMPLETE": "FINISHED", "FAIL": "FAILED", "PRUNED": "KILLED"}
ARTIFACTS = (("pai", ("*.csv", "*.png"), "pai"), ("analysis", ("findings.json", "report.md", "*.png"), "analysis"),
             (".", (trial_files.RUN_CONFIG, trial_files.RESULT, trial_files.METRICS, "analysis.json"), ""))


RUNS_VIEW = "workflowType=machine_learning"  # the UI's "Model training" view (its default is GenAI)


class MlflowTracker(Tracker):
    enabled = True

    def __init__(self, uri: str | None, experiment: str, sweep_dir: Path, log_artifacts: bool = True,
                 request_timeout: int = 10, max_retries: int = 1, say: Callable[[str], None] | None = None,
                 max_tag: int = MAX_TAG):
        self.sweep_dir = Path(sweep_dir).resolve()
        self.experiment = experiment
        self.log_artifacts = log_artifacts
        self.max_tag = max_tag
        self.say = say or (lambda line: print(f"pai-sweep: tracking: {line}", file=sys.stderr, flush=True))
        # MLflow's default store, fixed now: the folder the sweep was started in, whatever happens later.
        # (An old ./mlruns with runs makes MLflow pick its file store instead: leave that choice to MLflow.)
        self._uri = uri or (None if (Path.cwd() / "mlruns").is_dir() else f"sqlite:///{Path.cwd() / 'mlflow.db'}")
        # MLflow retries 7 times with growing backoff by default: minutes per call against a dead
        # server. Its only knobs are environment variables: the backlog sets them while its logging
        # thread runs (from this thread, before it starts), and never over what the user exported.
        wanted = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": str(max_retries), "MLFLOW_HTTP_REQUEST_TIMEOUT": str(request_timeout),
                  "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1"}
        self.queue = Backlog(self.sweep_dir / BACKLOG, self._apply_now, self.say,
                             where=lambda: self._uri or "the default store",
                             env={k: v for k, v in wanted.items() if k not in os.environ})
        self._client = None
        self._experiment_id: str | None = None
        self._parent_id: str | None = None
        self._git = git_commit()
        self._baseline: tuple[float | None, float | None] = (None, None)  # (score, params) once the baseline is logged

    # -- the driver's calls: each one queues its item and returns; the backlog's thread logs the
    # queue in order, so the sweep never waits for MLflow (store creation alone takes seconds).

    @property
    def uri(self) -> str:
        if self._uri is None:
            import mlflow

            quiet_third_party()
            self._uri = mlflow.get_tracking_uri()  # MLflow's default: sqlite:///<cwd>/mlflow.db
        return self._uri

    def start_sweep(self, config: dict) -> None:
        self.queue.submit({"op": "sweep", "config": sweep_params(config)})

    def log_trial(self, study_trial, trial_dir: Path | None = None) -> None:
        record = study_trial if isinstance(study_trial, dict) else trial_record(study_trial)
        self.queue.submit({"op": "trial", "trial": record, "trial_dir": str(Path(trial_dir).resolve()) if trial_dir else None})

    def finish_sweep(self, summary: dict, report_dir: Path | None = None) -> None:
        self.queue.submit({"op": "finish", "summary": {k: jsonable(v) for k, v in (summary or {}).items()},
                           "report_dir": str(Path(report_dir).resolve()) if report_dir else None})
        self.close()  # the sweep is over: say now what did not reach the store

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything queued so far was tried once (logged, or kept after a failure)."""
        return self.queue.flush(timeout)

    def close(self) -> None:
        self.queue.close()

    def pending(self) -> list[str]:
        """What is queued and not logged yet, e.g. ["trial 3", "sweep end"]."""
        return self.queue.pending()

    def _apply_now(self, item: dict) -> None:
        """Log one queued item (called by the backlog's thread)."""
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
        # MLflow 3's UI opens in its GenAI view (traces) whatever the experiment's kind; this page opens the runs table
        page = f"/#/experiments/{self._experiment_id}/runs?{RUNS_VIEW}" if self._experiment_id else ""
        if uri.startswith(("http://", "https://")):
            return f"open {uri.rstrip('/')}{page or ''} (experiment {self.experiment})"
        command = f"mlflow ui --backend-store-uri {uri}"
        if uri.startswith("sqlite:///"):
            command += f" --artifacts-destination {Path(uri[len('sqlite:///'):]).parent / ARTIFACTS_DIR}"
        return command + (f", then open http://127.0.0.1:5000{page}" if page else "")

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
                    location = f"mlflow-artifacts:/{BAD_KEY.sub('_', self.experiment).replace(' ', '_')}"
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
        """Tag values as text; a value over max_tag (MAX_TAG) characters is written whole to tags/<name>.json (or .txt)
        and its tag says where, so a JSON tag is never cut into something json.loads refuses."""
        import tempfile

        out: dict[str, str] = {}
        spill: list[tuple[Path, str]] = []
        tmp = Path(tempfile.mkdtemp(prefix="pai-sweep-tags-"))
        try:
            for name, value in tags.items():
                text = value if isinstance(value, str) else json.dumps(value)
                if len(text) <= self.max_tag:
                    out[name] = text
                    continue
                path = tmp / (BAD_KEY.sub("_", name) + (".txt" if isinstance(value, str) else ".json"))
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
            found = self._search(f"tags.`{TAG_SWEEP_DIR}` = '{quote(str(self.sweep_dir))}' and tags.`{TAG_ROLE}` = 'sweep'")
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
            self._baseline = (finite(attrs.get("score", rec["values"][0])), finite(attrs.get("chosen_params") or attrs.get("n_params")))
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
                "origin": origin, "optuna.state": rec["state"], **self._git, **launch_tags(own_dir)}
        tags["status"] = str(attrs.get("status") or (result.status if result else rec["state"].lower()))
        reason = attrs.get("reason") or (result.reason if result else None)
        if origin.startswith("rule:"):
            tags["rule"] = origin[len("rule:"):]
        if attrs.get("parent") is not None:
            tags["parent_trial"] = str(attrs["parent"])
        tags.update({key: str(attrs[key]) for key in START_TAGS if attrs.get(key) is not None})
        run_id = client.create_run(self._experiment(), start_time=rec["start_ms"], tags=tags, run_name=f"trial-{number}").info.run_id

        params = flatten(read_yaml(trial_dir / trial_files.RUN_CONFIG)) if trial_dir else {}
        for key, value in rec["params"].items():  # the trial's own search values win (derived: its dendrite count)
            params[BAD_KEY.sub("_", key)] = str(value)[:MAX_PARAM]
        now = int(time.time() * 1000)
        metrics = [Metric(name, value, now, record.epoch)
                   for record in (trial_files.read_metrics(own_dir) if own_dir else [])
                   for name, field in EPOCH_METRICS.items()
                   if (value := finite(getattr(record, field))) is not None]
        finals, more_tags = final_metrics(rec, result, attrs, self._baseline)
        if reason:
            more_tags["reason"] = str(reason)
        metrics += [Metric(BAD_KEY.sub("_", k), v, now, 0) for k, v in finals.items() if v is not None]
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

    def _finish_parent(self, summary: dict, report_dir: Path | None) -> None:
        from mlflow.entities import Metric, RunTag

        client = self._mlflow()
        now = int(time.time() * 1000)
        numbers = {f"sweep.{k}": finite(v) for k, v in summary.items() if finite(v) is not None}
        numbers.update(sweep_metrics(summary))
        metrics = [Metric(k, v, now, 0) for k, v in numbers.items()]
        tags = self._tags_and_files(self._parent_id, {f"sweep.{k}": v for k, v in summary.items() if finite(v) is None and v is not None})
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
