"""The tracker's backlog (pai_sweep/tracking/backlog.py) without MLflow: order, persistence, and the environment
of its logging thread, which is set by the caller's thread before the thread starts and restored after it ends."""

from __future__ import annotations

import os
import threading
from collections.abc import MutableMapping

from pai_sweep.tracking import make_tracker
from pai_sweep.tracking.backlog import BACKLOG, Backlog, read_backlog


class RecordingEnviron(MutableMapping):
    """os.environ that notes which thread writes to it."""

    def __init__(self, base):
        self.data, self.writers = dict(base), []

    def __getitem__(self, key):
        return self.data[key]

    def __setitem__(self, key, value):
        self.writers.append(threading.current_thread().name)
        self.data[key] = value

    def __delitem__(self, key):
        self.writers.append(threading.current_thread().name)
        del self.data[key]

    def __iter__(self):
        return iter(self.data)

    def __len__(self):
        return len(self.data)


def test_env_is_set_before_the_thread_starts_and_restored_after_it_ends(tmp_path, monkeypatch):
    env = RecordingEnviron(os.environ)
    env.pop("PAI_SWEEP_TEST_KNOB", None)
    monkeypatch.setattr(os, "environ", env)
    seen = []

    def apply(item):
        seen.append((item["op"], os.environ.get("PAI_SWEEP_TEST_KNOB"), threading.current_thread().name))

    queue = Backlog(tmp_path / BACKLOG, apply, say=lambda line: None, where=lambda: "store",
                    env={"PAI_SWEEP_TEST_KNOB": "3"})
    queue.submit({"op": "sweep", "config": {}})
    queue.submit({"op": "trial", "trial": {"number": 0}, "trial_dir": None})
    assert queue.flush(timeout=30)
    assert os.environ.get("PAI_SWEEP_TEST_KNOB") == "3"  # while the thread runs
    queue.close()
    assert seen == [("sweep", "3", "pai-sweep-tracking"), ("trial", "3", "pai-sweep-tracking")]
    assert "PAI_SWEEP_TEST_KNOB" not in os.environ  # restored once the thread was joined
    assert env.writers and set(env.writers) == {threading.main_thread().name}  # never written by the logging thread
    queue.submit({"op": "finish", "summary": {}, "report_dir": None})  # a later call starts it again, with its env
    queue.close()
    assert seen[-1] == ("finish", "3", "pai-sweep-tracking") and "PAI_SWEEP_TEST_KNOB" not in os.environ


def test_a_failed_item_stays_on_disk_in_order_and_is_said_once(tmp_path):
    lines, calls = [], []

    def down(item):
        calls.append(item["op"])
        raise ConnectionError("connection refused\nmore")

    path = tmp_path / BACKLOG
    queue = Backlog(path, down, say=lines.append, where=lambda: "http://127.0.0.1:9")
    queue.submit({"op": "sweep", "config": {}})
    queue.submit({"op": "trial", "trial": {"number": 4}, "trial_dir": None})
    queue.submit({"op": "trial", "trial": {"number": 4}, "trial_dir": "again"})  # replaces the queued trial 4
    queue.close()
    assert [i["op"] for i in read_backlog(path)] == ["sweep", "trial"] and read_backlog(path)[1]["trial_dir"] == "again"
    assert queue.pending() == ["sweep start", "trial 4"]
    assert lines[0] == (f"sweep start not logged to http://127.0.0.1:9 (ConnectionError: connection refused); "
                        f"queued in {path}, retried on the next call")
    assert lines[-1].startswith("2 item(s) not logged to http://127.0.0.1:9 (sweep start, trial 4)")
    assert sum("not logged to" in line and "queued in" in line for line in lines) == 1  # said once while it fails
    logged = []
    again = Backlog(path, lambda item: logged.append(item["op"]), say=lines.append, where=lambda: "store")
    again.close()  # a resumed sweep logs what waited, in order, and the file goes
    assert logged == ["sweep", "trial"] and not path.exists()


def test_mlflow_env_never_overrides_what_the_user_exported(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "99")
    monkeypatch.delenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", raising=False)
    monkeypatch.delenv("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", raising=False)
    tracker = make_tracker({"name": "mlflow", "uri": f"sqlite:///{tmp_path / 'm.db'}", "max_retries": 2}, "x", tmp_path)
    assert tracker.queue._env == {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1"}


def test_a_worker_never_inherits_the_trackers_own_environment(tmp_path, monkeypatch):
    """The MLflow HTTP settings the tracker sets for its thread stay the driver's: a worker's environment
    (pai_sweep.spawn.worker_environ, used by every local launch path) leaves them out; the user's own stay."""
    from pai_sweep.launchers.local import LocalLauncher
    from pai_sweep.spawn import DRIVER_ONLY_ENV, worker_environ

    monkeypatch.setenv("PAI_SWEEP_USERS_OWN", "kept")
    monkeypatch.delenv("PAI_SWEEP_TEST_KNOB", raising=False)
    queue = Backlog(tmp_path / BACKLOG, lambda item: None, say=lambda line: None, where=lambda: "store",
                    env={"PAI_SWEEP_TEST_KNOB": "3"})
    queue.submit({"op": "sweep", "config": {}})
    assert queue.flush(timeout=30) and os.environ["PAI_SWEEP_TEST_KNOB"] == "3"
    worker = worker_environ({"EXTRA": "1"})
    assert "PAI_SWEEP_TEST_KNOB" not in worker and DRIVER_ONLY_ENV not in worker
    assert worker["PAI_SWEEP_USERS_OWN"] == "kept" and worker["EXTRA"] == "1"
    from omegaconf import OmegaConf

    slot_env = LocalLauncher(OmegaConf.create({"devices": "cpu", "warm_start": False}), tmp_path, 1)._env("cpu", 1)
    assert "PAI_SWEEP_TEST_KNOB" not in slot_env and slot_env["PAI_SWEEP_USERS_OWN"] == "kept"
    queue.close()
    assert "PAI_SWEEP_TEST_KNOB" not in os.environ and DRIVER_ONLY_ENV not in os.environ
