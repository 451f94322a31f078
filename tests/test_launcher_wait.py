"""The local launcher wakes the driver when a worker ends (its exit fd), instead of after a poll interval."""

from __future__ import annotations

import multiprocessing as mp
import subprocess
import sys
import time
from types import SimpleNamespace as NS

from pai_sweep.launchers.base import JobState
from pai_sweep.launchers.exits import wait_any
from pai_sweep.launchers.local import LocalLauncher
from pai_sweep.launchers.warm import WarmProcess

LONG = 600.0  # a wait that is not woken would make the test hang for this long, and then fail


def spawn_sleeper(seconds: float):
    def spawn(trial_dir, env=None, log_path=None):
        return subprocess.Popen([sys.executable, "-c", f"import time; time.sleep({seconds})"], cwd=trial_dir,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    return spawn


def test_wait_returns_when_a_worker_ends_and_leaves_reaping_to_poll(tmp_path):
    launcher = LocalLauncher(NS(devices="cpu"), tmp_path, in_flight=2, spawn=spawn_sleeper(0.3))
    (tmp_path / "0").mkdir()
    job = launcher.submit(0, tmp_path / "0")
    assert launcher.wait(LONG) is True
    assert launcher.poll(job) == JobState.FINISHED and job.info["returncode"] == 0
    assert launcher.wait(0.05) is False  # nothing left to end: the timeout


def test_wait_times_out_while_workers_run(tmp_path):
    launcher = LocalLauncher(NS(devices="cpu"), tmp_path, in_flight=1, spawn=spawn_sleeper(60))
    (tmp_path / "0").mkdir()
    job = launcher.submit(0, tmp_path / "0")
    try:
        assert launcher.wait(0.1) is False
        assert launcher.poll(job) == JobState.RUNNING
    finally:
        launcher.cancel(job)


def test_a_warm_worker_wakes_the_wait_through_its_sentinel():
    process = mp.get_context("fork").Process(target=time.sleep, args=(0.3,))
    process.start()
    worker = WarmProcess(process)
    assert wait_any([worker], LONG) is True
    worker.wait(LONG)
    assert worker.poll() == 0


def test_a_worker_without_exit_fd_is_polled():
    class NoFd:  # a process handle pidfd_open cannot watch (e.g. not Linux)
        pid = -1

        def __init__(self):
            self.calls = 0

        def poll(self):
            self.calls += 1
            return 0 if self.calls >= 3 else None

    handle = NoFd()
    assert wait_any([handle], LONG) is True and handle.calls == 3
