"""Local launcher: device slots, environment per slot, launch.json, poll, cancel of a process group, reattach."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace as NS

import pytest

from pai_sweep.errors import ConfigError
from pai_sweep.launchers.base import JobState
from pai_sweep.launchers.local import LocalLauncher, _pid_alive, device_slots

# Writes its environment, starts a grandchild that sleeps, then sleeps itself (or exits at once).
SCRIPT = """
import json, os, subprocess, sys, time
json.dump({k: os.environ.get(k) for k in ("CUDA_VISIBLE_DEVICES", "OMP_NUM_THREADS")}, open("env.json", "w"))
if float(sys.argv[1]) > 0:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    open("child.pid", "w").write(str(child.pid))
    time.sleep(float(sys.argv[1]))
"""


def spawner(seconds: float):
    def spawn(trial_dir, env=None, log_path=None):
        with open(log_path, "ab") as log:
            return subprocess.Popen([sys.executable, "-c", SCRIPT, str(seconds), str(Path(trial_dir).resolve())],
                                    cwd=trial_dir, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=True)
    return spawn


def wait_for(path: Path, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert path.exists(), f"{path} never appeared"


def test_device_slots(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert device_slots("auto", 2) == ["cpu", "cpu"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1,2")
    assert device_slots("auto", 2) == ["0", "1"]
    assert device_slots("cpu", 3) == ["cpu"] * 3
    assert device_slots([3, 5], 4) == ["3", "5"]
    with pytest.raises(ConfigError, match="launcher.devices"):
        device_slots(["gpu-a"], 2)


def test_cpu_slots_split_threads_and_cancel_kills_the_whole_group(tmp_path, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    launcher = LocalLauncher(NS(devices="auto"), tmp_path, in_flight=2, spawn=spawner(60))
    assert launcher.capacity == 2
    dirs = [tmp_path / "trials" / str(i) for i in range(2)]
    jobs = []
    for i, d in enumerate(dirs):
        d.mkdir(parents=True)
        jobs.append(launcher.submit(i, d))
    with pytest.raises(RuntimeError, match="no free device slot"):
        launcher.submit(2, tmp_path)
    wait_for(dirs[0] / "child.pid")
    env = json.loads((dirs[0] / "env.json").read_text())
    assert env == {"CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": str(max(1, (os.cpu_count() or 1) // 2))}
    launch = json.loads((dirs[0] / "launch.json").read_text())
    assert launch["pid"] == jobs[0].info["pid"] and launch["device"] == "cpu" and launch["start_time"] > 0
    assert launcher.poll(jobs[0]) == JobState.RUNNING

    # A driver that restarted finds the worker again through launch.json.
    other = LocalLauncher(NS(devices="cpu"), tmp_path, in_flight=1, spawn=spawner(60))
    again = other.reattach(0, dirs[0])
    assert again is not None and again.info["pid"] == jobs[0].info["pid"]
    assert other.poll(again) == JobState.RUNNING

    child = int((dirs[0] / "child.pid").read_text())
    launcher.cancel(jobs[0], "test")
    assert not _pid_alive(jobs[0].info["pid"])
    deadline = time.monotonic() + 10  # the signal reaches the grandchild a moment later
    while _pid_alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _pid_alive(child)
    assert launcher.free == ["cpu"]
    assert other.reattach(0, dirs[0]) is None
    launcher.close()
    assert not _pid_alive(jobs[1].info["pid"])


def test_finished_process_frees_its_gpu_slot(tmp_path):
    launcher = LocalLauncher(NS(devices=[7]), tmp_path, in_flight=2, spawn=spawner(0))
    assert launcher.slots == ["7"]
    job = launcher.submit(0, tmp_path)
    deadline = time.monotonic() + 20
    while launcher.poll(job) == JobState.RUNNING and time.monotonic() < deadline:
        time.sleep(0.05)
    assert job.info["returncode"] == 0 and launcher.free == ["7"]
    assert json.loads((tmp_path / "env.json").read_text())["CUDA_VISIBLE_DEVICES"] == "7"
    launcher.close()
