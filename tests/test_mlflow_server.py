"""A real `mlflow server` on 127.0.0.1: a sweep logged over HTTP, the server stopped mid-sweep, then back.

The server is started and stopped by its PID (SIGTERM to the main process stops its workers).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from pai_sweep.tracking import BACKLOG, make_tracker
from test_report import build_sweep
from test_tracking import _cfg, _free_port, check_logged, log_sweep


class Server:
    def __init__(self, folder: Path, port: int):
        self.folder, self.port, self.proc = folder, port, None
        self.uri = f"http://127.0.0.1:{port}"

    def start(self) -> None:
        env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
        cmd = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1",
               "--backend-store-uri", f"sqlite:///{self.folder / 'mlflow.db'}",
               "--artifacts-destination", str(self.folder / "mlartifacts")]
        with open(self.folder / "server.log", "ab") as log:  # the child keeps its own copy of the descriptor
            self.proc = subprocess.Popen(cmd, cwd=self.folder, env=env, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)

    def wait_healthy(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mlflow server exited with {self.proc.returncode}: {(self.folder / 'server.log').read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{self.uri}/health", timeout=2) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                time.sleep(0.3)
        raise RuntimeError(f"mlflow server not healthy after {timeout} s: {(self.folder / 'server.log').read_text()[-2000:]}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)  # to the main PID: it stops its own workers
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)  # the session this test started, nothing else
            self.proc.wait(timeout=10)


@pytest.fixture
def server(tmp_path):
    folder = tmp_path / "server"
    folder.mkdir()
    srv = Server(folder, _free_port())
    srv.start()  # it answers after 6-13 s (more on a busy machine): the test prepares its sweep meanwhile
    yield srv
    srv.stop()


def test_sweep_over_http_survives_the_server_going_away(tmp_path, server, capsys):
    sweep_dir, study = build_sweep(tmp_path)
    server.wait_healthy()
    first = {0, 1, 2, 3}
    tracker = make_tracker(_cfg(server.uri), "demo-http", sweep_dir)
    log_sweep(tracker, sweep_dir, study, numbers=first)
    assert tracker.flush(timeout=120)  # logging runs in the background: wait for it
    client_runs = check_partial(server.uri, study, first)
    assert client_runs == len(first) + 1  # read back over HTTP with mlflow.search_runs

    server.stop()  # by its PID, mid-sweep
    assert server.proc.returncode is not None
    for t in study.trials:
        if t.number not in first:
            tracker.log_trial(t, sweep_dir / "trials" / str(t.user_attrs.get("parent", t.number)))  # never raises
    assert tracker.flush(timeout=120)
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.startswith("pai-sweep: tracking")]
    assert len(lines) == 1 and "trial 4 not logged to " + server.uri in lines[0], err
    assert tracker.pending() == [f"trial {t.number}" for t in study.trials if t.number not in first]
    assert (sweep_dir / BACKLOG).read_text().count('"op": "trial"') == len(study.trials) - len(first)

    server.start()  # back on the same port and store: the end of the sweep catches up
    server.wait_healthy()
    tracker.finish_sweep({"best": 97.98}, None)
    tracker.close()
    assert tracker.pending() == [] and not (sweep_dir / BACKLOG).exists()
    assert "caught up" in capsys.readouterr().err
    parent, children = check_logged(server.uri, "demo-http", study, sweep_dir)
    assert parent.info.status == "FINISHED" and len(children) == len(study.trials)


def check_partial(uri: str, study, numbers: set[int]) -> int:
    import mlflow

    mlflow.set_tracking_uri(uri)
    df = mlflow.search_runs(experiment_names=["demo-http"])
    trials = df[df["tags.pai_sweep.role"] == "trial"]
    assert sorted(int(n) for n in trials["tags.pai_sweep.trial"]) == sorted(numbers)
    by_number = {t.number: t for t in study.trials}
    for _, row in trials.iterrows():
        trial = by_number[int(row["tags.pai_sweep.trial"])]
        assert row["params.dendrites.max_dendrites"] == str(trial.params["dendrites.max_dendrites"])
        if trial.values:
            assert row["metrics.objective"] == trial.values[0]
    return len(df)


def _get(uri: str, path: str) -> dict:
    import json

    with urllib.request.urlopen(f"{uri}{path}", timeout=30) as resp:
        return json.loads(resp.read())


def test_moved_sweep_reads_well_through_a_real_server(tmp_path, monkeypatch, capsys):
    """A tiny real sweep into a sqlite store, the folder moved, then `mlflow server` on the moved store: the
    experiment opens in the training view, the parent has its headline metrics, every JSON tag parses (long ones
    are artifacts), and the artifacts (trials' and the report's) are served from the new place."""
    import json
    import shutil
    import urllib.parse

    import optuna

    import pai_sweep.tracking
    from pai_sweep.cli import main
    from test_optuna_view import TINY

    monkeypatch.setattr(pai_sweep.tracking, "MAX_TAG", 300)  # so this small sweep has tags that become artifacts
    root = tmp_path / "project"
    tiny = [a for a in TINY if not a.startswith("tracking=")]
    code = main([*tiny, f"sweep.dir={root / 'sweep'}", f"tracking.uri=sqlite:///{root / 'mlflow.db'}",
                 "sweep.space={dendrites.n_epochs_to_switch:{type:int,low:1,high:2}}"])
    assert code == 0, capsys.readouterr()
    study = optuna.load_study(study_name="default", storage=f"sqlite:///{root / 'sweep' / 'study.db'}")
    moved = tmp_path / "elsewhere"
    shutil.move(root, moved)
    srv = Server(moved, _free_port())  # --backend-store-uri moved/mlflow.db --artifacts-destination moved/mlartifacts
    srv.start()
    try:
        srv.wait_healthy()
        exp = _get(srv.uri, "/api/2.0/mlflow/experiments/get-by-name?experiment_name=default")["experiment"]
        assert {t["key"]: t["value"] for t in exp["tags"]}["mlflow.experimentKind"] == "custom_model_development"
        req = urllib.request.Request(f"{srv.uri}/api/2.0/mlflow/runs/search", method="POST",
                                     data=json.dumps({"experiment_ids": [exp["experiment_id"]], "max_results": 100}).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as resp:
            found = json.loads(resp.read())["runs"]
        tags = {r["info"]["run_id"]: {t["key"]: t["value"] for t in r["data"].get("tags", [])} for r in found}
        metrics = {r["info"]["run_id"]: {m["key"]: m["value"] for m in r["data"].get("metrics", [])} for r in found}
        parent = next(rid for rid, t in tags.items() if t["pai_sweep.role"] == "sweep")
        best = max(study.best_trials, key=lambda t: t.values[0])
        assert metrics[parent]["best_objective"] == pytest.approx(best.values[0], abs=1e-4) and metrics[parent]["best_trial"] == best.number
        assert metrics[parent]["trials_complete"] == sum(t.state.name == "COMPLETE" for t in study.trials)
        spilled = []
        for rid, run_tags in tags.items():
            for key, value in run_tags.items():
                if value.startswith("artifact tags/"):
                    spilled.append((rid, value.split()[1]))
                elif value[:1] in "[{":
                    json.loads(value)  # never cut
        assert any(rid == parent and name == "tags/sweep.trials.json" for rid, name in spilled), spilled

        def listing(rid, path=""):
            q = urllib.parse.urlencode({"run_id": rid, "path": path})
            return {f["path"] for f in _get(srv.uri, f"/ajax-api/2.0/mlflow/artifacts/list?{q}").get("files", [])}

        def content(rid, path):
            q = urllib.parse.urlencode({"run_uuid": rid, "path": path})
            with urllib.request.urlopen(f"{srv.uri}/get-artifact?{q}", timeout=30) as resp:
                return resp.read().decode()

        for rid, name in spilled:
            json.loads(content(rid, name))  # the whole value, valid JSON
        assert "report/report.html" in listing(parent, "report")
        trained = [rid for rid, t in tags.items() if t.get("pai_sweep.role") == "trial" and t["origin"] != "derived"]
        assert len(trained) == 2
        for rid in trained:
            assert {"run.yaml", "result.json", "metrics.jsonl", "pai"} <= listing(rid)
            assert json.loads(content(rid, "result.json"))["status"] == "complete"
    finally:
        srv.stop()
