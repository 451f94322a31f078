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
