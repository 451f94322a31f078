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
from pai_sweep.launchers.devices import device_slots, threads_per_trial
from pai_sweep.launchers.local import LocalLauncher
from pai_sweep.launchers.processes import pid_alive

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
    assert not pid_alive(jobs[0].info["pid"])
    deadline = time.monotonic() + 10  # the signal reaches the grandchild a moment later
    while pid_alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not pid_alive(child)
    assert launcher.free == ["cpu"]
    assert other.reattach(0, dirs[0]) is None
    launcher.close()
    assert not pid_alive(jobs[1].info["pid"])


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


def test_device_assignment_with_a_fake_device_list():
    gpus = ["0", "1"]
    assert device_slots("auto", 4, per_device=2, gpus=gpus) == ["0", "1", "0", "1"]  # the first trials spread over GPUs
    assert device_slots("auto", 3, per_device=2, gpus=gpus) == ["0", "1", "0"]  # never more than in_flight
    assert device_slots("auto", 8, per_device=2, gpus=gpus) == ["0", "1", "0", "1"]  # nor more than k per GPU
    assert device_slots("auto", 2, per_device=2, gpus=[]) == ["cpu", "cpu"]
    assert device_slots([3, 5], 8, per_device=3) == ["3", "5"] * 3
    assert device_slots("cpu", 4, per_device=2) == ["cpu"] * 4
    with pytest.raises(ConfigError, match=r"launcher.trials_per_device=0 must be an integer >= 1"):
        device_slots("auto", 2, per_device=0, gpus=gpus)
    # cores: each device gets cpus // devices, each of its k trials a k-th of that, at least one
    assert threads_per_trial(["0", "1", "0", "1"], 16, 2) == 4
    assert threads_per_trial(["0"], 16, 1) == 16
    assert threads_per_trial(["cpu"] * 4, 8, 2) == 2  # two CPU slots of 4 cores, 2 trials each
    assert threads_per_trial(["cpu"] * 3, 8, 2) == 2  # ceil(3 / 2) = 2 CPU slots
    assert threads_per_trial(["cpu"] * 4, 2, 2) == 1  # never 0
    assert threads_per_trial(["cpu"] * 4, 16, 1) == 4


@pytest.mark.parametrize("devices, expected", [("cpu", ["", "", "", ""]), ([0, 1], ["0", "1", "0", "1"])])
def test_k_trials_share_a_device_and_split_its_cores(tmp_path, monkeypatch, devices, expected):
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    launcher = LocalLauncher(NS(devices=devices, trials_per_device=2), tmp_path, in_flight=4, spawn=spawner(0))
    assert launcher.capacity == 4
    dirs = [tmp_path / "trials" / str(i) for i in range(4)]
    for i, d in enumerate(dirs):
        d.mkdir(parents=True)
        launcher.submit(i, d)
    for d in dirs:
        wait_for(d / "env.json")
    envs = [json.loads((d / "env.json").read_text()) for d in dirs]
    assert [e["CUDA_VISIBLE_DEVICES"] for e in envs] == expected
    assert {e["OMP_NUM_THREADS"] for e in envs} == {"2"}  # 8 cores, 2 devices, 2 trials each
    launches = [json.loads((d / "launch.json").read_text()) for d in dirs]
    assert {la["threads"] for la in launches} == {2}
    assert [la["shares_device_with"] for la in launches] == ([0] * 4 if devices == "cpu" else [1] * 4)
    launcher.close()


# A worker that runs out of GPU memory on its first run (while sharing), then completes (or fails again: OOM_TWICE).
OOM = """
import json, os, sys, time
from pathlib import Path
json.dump({k: os.environ.get(k) for k in ("CUDA_VISIBLE_DEVICES", "OMP_NUM_THREADS")}, open("env-%d.json" % len(list(Path().glob("env-*.json"))), "w"))
if Path("sleep").exists():
    time.sleep(float(Path("sleep").read_text()))
first = not Path("ran").exists()
Path("ran").touch()
oom = first or Path("OOM_TWICE").exists()
reason = "RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB" if oom else "epoch_cap"
json.dump({"status": "failed" if oom else "complete", "reason": reason}, open("result.json", "w"))
"""


def oom_spawn(trial_dir, env=None, log_path=None):
    with open(log_path, "ab") as log:
        return subprocess.Popen([sys.executable, "-c", OOM], cwd=trial_dir, env=env, stdin=subprocess.DEVNULL,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def poll_until(launcher, job, states, timeout=30.0):
    deadline = time.monotonic() + timeout
    while (state := launcher.poll(job)) not in states:
        assert time.monotonic() < deadline, f"trial {job.trial_number} still {state}"
        time.sleep(0.05)
    return state


def test_a_trial_out_of_gpu_memory_while_sharing_runs_again_alone_once(tmp_path, monkeypatch):
    from pai_sweep.trial_files import read_result

    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    launcher = LocalLauncher(NS(devices=[7], trials_per_device=2), tmp_path, in_flight=2, spawn=oom_spawn)
    dirs = [tmp_path / "trials" / str(i) for i in range(3)]
    for d in dirs:
        d.mkdir(parents=True)
    (dirs[1] / "ran").touch()  # trial 1 completes on its first run, after a while
    (dirs[1] / "sleep").write_text("2")
    (dirs[2] / "ran").touch()
    jobs = [launcher.submit(0, dirs[0]), launcher.submit(1, dirs[1])]
    # trial 0 ran out of memory: it waits for the whole GPU while trial 1 still runs on it
    assert poll_until(launcher, jobs[0], (JobState.PENDING, JobState.FINISHED)) is JobState.PENDING
    assert launcher.poll(jobs[1]) is JobState.RUNNING
    assert "CUDA out of memory" in json.loads((dirs[0] / "result.oom-shared.json").read_text())["reason"]
    with pytest.raises(RuntimeError, match="no free device slot"):
        launcher.submit(2, dirs[2])  # the waiting trial still counts against the capacity
    assert poll_until(launcher, jobs[1], (JobState.FINISHED,)) is JobState.FINISHED
    job2 = launcher.submit(2, dirs[2])  # a new trial waits: the GPU is trial 0's alone now
    assert poll_until(launcher, jobs[0], (JobState.FINISHED,)) is JobState.FINISHED
    assert launcher.poll(job2) in (JobState.RUNNING, JobState.FINISHED)  # then it gets the GPU
    result = read_result(dirs[0])
    assert result.ok, result
    alone = json.loads((dirs[0] / "env-1.json").read_text())
    assert alone == {"CUDA_VISIBLE_DEVICES": "7", "OMP_NUM_THREADS": "8"}  # the GPU and all its cores
    assert json.loads((dirs[0] / "env-0.json").read_text())["OMP_NUM_THREADS"] == "4"  # shared: half
    launch = json.loads((dirs[0] / "launch.json").read_text())
    assert launch["oom_retry"] is True and launch["shares_device_with"] == 0 and launch["threads"] == 8
    assert "out of GPU memory while sharing GPU 7 with 1 other trial(s); running it again alone" in (dirs[0] / "worker.log").read_text()
    poll_until(launcher, job2, (JobState.FINISHED,))

    # out of memory again when alone: no second retry, the trial fails with the reason
    (dirs[0] / "OOM_TWICE").touch()
    for name in ("result.json", "result.oom-shared.json", "ran"):
        (dirs[0] / name).unlink()
    again = launcher.submit(0, dirs[0])
    assert poll_until(launcher, again, (JobState.FINISHED,)) is JobState.FINISHED
    assert "CUDA out of memory" in read_result(dirs[0]).reason and not (dirs[0] / "result.oom-shared.json").exists()
    launcher.close()
