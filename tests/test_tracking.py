"""Tracking on a real MLflow sqlite store: a parent run per sweep, a child run per trial, idempotent, never raising."""

from __future__ import annotations

import json
import socket
import subprocess
from pathlib import Path

import mlflow
import optuna
import pytest
import yaml
from mlflow.tracking import MlflowClient
from omegaconf import OmegaConf

from pai_sweep.compose import compose
from pai_sweep.errors import ConfigError, TrackingError
from pai_sweep.tracking import BACKLOG, TAG_DONE, Tracker, local_artifact_dir, make_tracker, validate_tracking
from test_report import MD, build_sweep


def _cfg(uri, **kw):
    return OmegaConf.create({"name": "mlflow", "uri": uri, "experiment": None, "log_artifacts": True,
                             "request_timeout": 5, "max_retries": 0, **kw})


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """One sqlite store for the module (creating MLflow's tables takes seconds); each test its own experiment."""
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"


def log_sweep(tracker, sweep_dir, study, numbers=None):
    tracker.start_sweep(yaml.safe_load((sweep_dir / "config.yaml").read_text()))
    for t in study.trials:
        if numbers is None or t.number in numbers:
            # as the driver does: a derived trial comes with its parent's folder
            tracker.log_trial(t, sweep_dir / "trials" / str(t.user_attrs.get("parent", t.number)))


def runs(uri, experiment):
    mlflow.set_tracking_uri(uri)
    return mlflow.search_runs(experiment_names=[experiment], output_format="list", max_results=500)


def listed(uri, run_id, path=None) -> set[str]:
    """A run's artifacts under `path`, as MlflowClient.list_artifacts names them. A sqlite store keeps them in
    <db folder>/mlartifacts (served by `mlflow ui`), read from disk here; a server lists them itself."""
    client = MlflowClient(uri)
    root = local_artifact_dir(uri, client.get_run(run_id).info.artifact_uri)
    if root is None:
        return {a.path for a in client.list_artifacts(run_id, path)}
    folder = root / path if path else root
    return {str(p.relative_to(root)) for p in folder.iterdir()} if folder.is_dir() else set()


def check_logged(uri, experiment, study, sweep_dir):
    """One parent and one child per trial, with params, per-epoch metrics, final metrics, tags and artifacts."""
    client = MlflowClient(uri)
    all_runs = runs(uri, experiment)
    parents = [r for r in all_runs if r.data.tags.get("pai_sweep.role") == "sweep"]
    children = [r for r in all_runs if r.data.tags.get("pai_sweep.role") == "trial"]
    assert len(parents) == 1
    parent = parents[0]
    assert parent.data.params["sweep.name"] == study.study_name and parent.data.params["model.name"] == "small_cnn"
    # a searched key's base value is no trial's value: the parent names where its range is instead
    assert parent.data.params[MD] == f"searched: see sweep.space.{MD}" and f"sweep.space.{MD}.type" in parent.data.params
    assert sorted(int(c.data.tags["pai_sweep.trial"]) for c in children) == [t.number for t in study.trials]
    by_number = {t.number: t for t in study.trials}
    for child in children:
        tags, params, metrics = child.data.tags, child.data.params, child.data.metrics
        trial = by_number[int(tags["pai_sweep.trial"])]
        assert tags["mlflow.parentRunId"] == parent.info.run_id
        assert tags["origin"] == trial.user_attrs["origin"] and tags[TAG_DONE] == "true"
        assert params[MD] == str(trial.params[MD])
        if trial.state == optuna.trial.TrialState.COMPLETE:
            assert metrics["objective"] == trial.values[0]
        if tags["origin"] == "derived":  # the parent's config with its own dendrite count; no epochs or files
            assert "val" not in metrics and tags["parent_trial"] == "3" and params["model.name"] == "small_cnn"
            assert params[MD] == "1" and metrics["chosen_dendrites"] == 1 and tags["reason"].startswith("architecture")
            assert "grown_dendrites" not in metrics and "parent" not in metrics
            assert listed(uri, child.info.run_id) == set()
            continue
        if tags["origin"].startswith("rule:"):  # where it started is a tag, never a metric
            assert tags["branched_from"] == "1" and tags["branch_epoch"] == "1"
            assert "branched_from" not in metrics and "branch_epoch" not in metrics
        assert params["model.name"] == "small_cnn" and params["train.max_epochs"] == "3"
        assert [(m.step, m.value) for m in client.get_metric_history(child.info.run_id, "val")] == [(0, 80.0), (1, 81.0), (2, 82.0)]
        assert [m.step for m in client.get_metric_history(child.info.run_id, "dendrites")] == [0, 1, 2]
        assert {"lr", "params", "train", "test", "loss"} <= set(metrics)
        assert tags["slurm.job_id"] == str(1000 + trial.number) and tags["launcher"] == "slurm"
        if trial.state == optuna.trial.TrialState.COMPLETE:
            assert tags["status"] == "complete" and tags["reason"] == "pai_complete"
            assert metrics["final_params"] == trial.user_attrs["chosen_params"] and metrics["param_ratio_vs_original"] > 0
            if tags["origin"] != "baseline":  # against the baseline trial (93.0 with 5000 params)
                assert metrics["score_vs_baseline"] == pytest.approx(trial.values[0] - 93.0)
                assert metrics["param_growth_vs_baseline"] == pytest.approx(metrics["chosen_params"] / 5000 - 1)
            assert child.info.status == "FINISHED"
        else:
            assert tags["status"] == "failed" and tags["reason"] == "nan loss at epoch 2" and child.info.status == "FAILED"
        if tags["origin"].startswith("rule:"):
            assert tags["rule"] == "optimal_dendrites"
        grown = json.loads((sweep_dir / "trials" / str(trial.number) / "result.json").read_text())["dendrites"]
        assert metrics["grown_dendrites"] == grown  # what the run added (chosen_dendrites: the architecture it is scored at)
        assert not {"objective_score", "n_params", "seconds", "final_dendrites", "parent"} & set(metrics)  # each number once
        files = listed(uri, child.info.run_id)
        assert {"run.yaml", "result.json", "metrics.jsonl", "pai", "analysis"} <= files
        pai = listed(uri, child.info.run_id, "pai")
        assert {"pai/tcScores.csv", "pai/tc.png", "pai/tc_best_arch_scores.csv"} <= pai
        assert listed(uri, child.info.run_id, "analysis") == {"analysis/findings.json", "analysis/report.md"}
    return parent, children


def test_malformed_uri_is_one_line():
    for uri in ("mlflow.db", "sqlite://", "sqlite:///:memory:", "htp://host:5000", "http://:5000", "http://host:99999",
                "http://host :5000", "/abs/mlruns", "file:///tmp/mlruns"):
        with pytest.raises(TrackingError, match="tracking.uri=") as err:
            make_tracker(_cfg(uri), "x", "sweep")
        assert "\n" not in str(err.value) and "sqlite:///" in str(err.value)
    for uri in ("http://127.0.0.1:5000", "https://mlflow.example.org", "sqlite:////tmp/x/mlflow.db",
                "postgresql+psycopg2://u@db:5432/mlflow", "databricks"):
        assert validate_tracking(_cfg(uri)) == uri
    with pytest.raises(TrackingError, match="valid values: mlflow, off"):
        validate_tracking(_cfg(None, name="wandb"))
    with pytest.raises(ConfigError):  # composing catches the name too, before any work
        compose(["tracking.name=wandb"])


def test_malformed_uri_stops_the_sweep_before_it_starts(tmp_path, capsys):
    from pai_sweep.cli import main

    assert main([f"sweep.dir={tmp_path / 'sweep'}", "tracking.uri=http//localhost:5000"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("pai-sweep: error: tracking.uri='http//localhost:5000' is not a valid tracking URI") and "\n" not in err
    assert not (tmp_path / "sweep").exists()  # nothing was created, no trial ran


def test_off_and_default_store(tmp_path, monkeypatch):
    off = make_tracker(compose(["tracking=off"]).tracking, "x", tmp_path)
    assert type(off) is Tracker and not off.enabled
    off.start_sweep({}), off.log_trial(None, None), off.finish_sweep({}, None), off.close()
    # No URI: MLflow's own default, sqlite mlflow.db in the working folder (`mlflow ui` there shows it).
    tracker = make_tracker(compose([]).tracking, "x", tmp_path / "sweep")
    assert tracker.uri == f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "mlflow.db")  # the user's environment is checked too
    with pytest.raises(TrackingError, match="no scheme"):
        make_tracker(compose([]).tracking, "x", tmp_path)


def test_sweep_logged_and_resume_is_idempotent(tmp_path, store, capsys):
    subprocess.run(["git", "init", "-q"], check=True)  # the user's code: its commit is tagged on every run
    subprocess.run(["git", "-c", "user.email=a@b", "-c", "user.name=a", "commit", "-q", "--allow-empty", "-m", "x"], check=True)
    commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    sweep_dir, study = build_sweep(tmp_path)
    report = tmp_path / "report"
    report.mkdir()
    (report / "report.md").write_text("# report\n")

    tracker = make_tracker(_cfg(store), "demo-idem", sweep_dir)
    log_sweep(tracker, sweep_dir, study)
    tracker.finish_sweep({"best": 97.98, "n_trials": 8, "best_trial": "6"}, report)
    tracker.close()
    assert "pai-sweep: tracking" not in capsys.readouterr().err and not (sweep_dir / BACKLOG).exists()
    parent, children = check_logged(store, "demo-idem", study, sweep_dir)
    assert parent.info.status == "FINISHED" and parent.data.metrics["sweep.best"] == 97.98
    assert parent.data.tags["mlflow.source.git.commit"] == commit and children[0].data.tags["mlflow.source.git.commit"] == commit
    client = MlflowClient(store)
    assert listed(store, parent.info.run_id, "report") == {"report/report.md"}

    # A child cut off half-way (no "logged" tag) is logged again; the rest is never logged twice.
    cut = children[0]
    client.delete_tag(cut.info.run_id, TAG_DONE)
    resumed = make_tracker(_cfg(store), "demo-idem", sweep_dir)
    log_sweep(resumed, sweep_dir, study)
    resumed.close()
    parent2, children2 = check_logged(store, "demo-idem", study, sweep_dir)
    assert parent2.info.run_id == parent.info.run_id
    before, after = {c.info.run_id for c in children}, {c.info.run_id for c in children2}
    assert cut.info.run_id not in after and before - {cut.info.run_id} < after and len(after) == len(before)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_server_queues_and_never_raises(tmp_path, capsys):
    sweep_dir, study = build_sweep(tmp_path)
    uri = f"http://127.0.0.1:{_free_port()}"  # nothing listens there
    tracker = make_tracker(_cfg(uri), "demo-down", sweep_dir)
    log_sweep(tracker, sweep_dir, study)
    tracker.finish_sweep({"best": 1.0}, None)
    # One line when the store first fails, one at the end of the sweep with everything not logged.
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "sweep start not logged to " + uri in err[0] and BACKLOG in err[0]
    queued = [json.loads(line) for line in (sweep_dir / BACKLOG).read_text().splitlines()]
    assert [q["op"] for q in queued] == ["sweep"] + ["trial"] * len(study.trials) + ["finish"]
    assert tracker.pending() == ["sweep start", *[f"trial {t.number}" for t in study.trials], "sweep end"]
    assert f"{len(queued)} item(s) not logged" in err[1] and "trial 7" in err[1] and "resumes" in err[1]
    tracker.close()  # nothing new to say
    assert capsys.readouterr().err == ""
    # A new driver (resume) reads the backlog; the same trial queued again replaces its entry.
    again = make_tracker(_cfg(uri), "demo-down", sweep_dir)
    again.log_trial(study.trials[2], sweep_dir / "trials" / "2")
    assert len(again.pending()) == len(queued) and again.pending()[-1] == "trial 2"
    again.close()


@pytest.mark.slow
def test_default_sweep_shrunk_is_in_mlflow(tmp_path, capsys):
    """After `pai-sweep` (the default sweep, shrunk), one parent and one child per trial, as the driver logged them."""
    from pai_sweep.cli import main

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    sweep_dir = tmp_path / "sweep"
    code = main(["model=mlp", "model.hidden=[16]", "dendrites=linear_only", "data.limit=400", "train.max_epochs=6",
                 "train.test_saves=false", "sweep.n_trials=2", "sweep.in_flight=2", "sweep.rule_trials=false",
                 "sweep.space={dendrites.n_epochs_to_switch:{type:int,low:1,high:2}}", f"sweep.dir={sweep_dir}",
                 f"tracking.uri={uri}"])
    out = capsys.readouterr()
    assert code == 0, out.out + out.err
    study = optuna.load_study(study_name="default", storage=f"sqlite:///{sweep_dir / 'study.db'}")
    mlflow.set_tracking_uri(uri)
    df = mlflow.search_runs(experiment_names=["default"])
    parents = df[df["tags.pai_sweep.role"] == "sweep"]
    children = df[df["tags.pai_sweep.role"] == "trial"]
    assert len(parents) == 1 and parents.iloc[0]["status"] == "FINISHED"
    assert sorted(children["tags.pai_sweep.trial"].astype(int)) == [t.number for t in study.trials]
    assert set(children["tags.mlflow.parentRunId"]) == {parents.iloc[0]["run_id"]}
    client = MlflowClient(uri)
    ran = [t for t in study.trials if t.user_attrs.get("origin") != "derived"]
    assert len(ran) == 2
    for t in ran:
        row = children[children["tags.pai_sweep.trial"] == str(t.number)].iloc[0]
        assert row["params.model.name"] == "mlp" and row["params.dendrites.n_epochs_to_switch"] == str(t.params["dendrites.n_epochs_to_switch"])
        assert row["tags.status"] == t.user_attrs["status"] and row["tags.origin"] == t.user_attrs["origin"]
        epochs = [json.loads(line)["epoch"] for line in (Path(t.user_attrs["trial_dir"]) / "metrics.jsonl").read_text().splitlines()]
        assert [m.step for m in client.get_metric_history(row["run_id"], "val")] == epochs and len(epochs) >= 2
        if t.values:
            assert row["metrics.objective"] == pytest.approx(t.values[0])
        files = listed(uri, row["run_id"])
        assert {"run.yaml", "result.json", "metrics.jsonl", "pai"} <= files
        assert any(p.endswith(".csv") for p in listed(uri, row["run_id"], "pai"))
    # The sweep report, written at the end of the sweep, is on the parent run.
    assert "report/report.md" in listed(uri, parents.iloc[0]["run_id"], "report")


def test_quiet_store_creation_and_the_closing_lines(tmp_path, capfd, monkeypatch):
    """A new sqlite store says nothing (MLflow/alembic INFO lines stay out of the progress lines); the sweep's
    last lines name the report and the commands that open the runs and the study."""
    import io
    import logging

    from pai_sweep.driver import _closing_lines
    from pai_sweep.progress import Progress

    monkeypatch.delenv("PAI_SWEEP_VERBOSE", raising=False)
    uri = f"sqlite:///{tmp_path / 'fresh' / 'mlflow.db'}"
    tracker = make_tracker(_cfg(uri), "quiet", tmp_path / "sweep")
    tracker.start_sweep({"sweep": {"name": "quiet"}})
    tracker.finish_sweep({"n_trials": 1}, None)
    out, err = capfd.readouterr()
    assert "MLflow database tables" not in out + err and "alembic" not in out + err, out + err
    assert logging.getLogger("mlflow").getEffectiveLevel() >= logging.WARNING

    cfg = compose([f"sweep.dir={tmp_path / 'sweep'}"])
    stream = io.StringIO()
    _closing_lines(Progress(stream), cfg, tmp_path / "sweep", tmp_path / "sweep" / "report", tracker)
    lines = [ln.split("] ", 1)[1] for ln in stream.getvalue().splitlines()]
    assert lines == [f"report: {tmp_path / 'sweep' / 'report' / 'report.html'}",
                     f"runs: mlflow ui --backend-store-uri {uri} --artifacts-destination {tmp_path / 'fresh' / 'mlartifacts'}"
                     f", then open http://127.0.0.1:5000/#/experiments/{tracker._experiment_id}/runs?workflowType=machine_learning",
                     f"study: optuna-dashboard sqlite:///{tmp_path / 'sweep' / 'study.db'}"]
