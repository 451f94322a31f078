"""launcher.use_array=true on the real cluster: the trials of one refill go in as one job array whose
tasks (JobID_N) are followed, requeued, cancelled and re-attached one by one, as single jobs are."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import uuid

import optuna
import pytest
from optuna.trial import TrialState
from slurm_helpers import jobs_named, launcher_cfg, slurm, wait_for
from test_slurm_sweep import SHRUNK

from pai_sweep.launchers import make_launcher
from pai_sweep.launchers.base import JobState
from pai_sweep.sweep.study import STALE_REASON
from pai_sweep.trial_files import read_metrics, read_result

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

ARRAY_SWEEP = [o for o in SHRUNK if not o.startswith(("sweep.n_trials", "sweep.in_flight", "train.max_epochs"))] + [
    "sweep.n_trials=4", "sweep.in_flight=4", "train.max_epochs=2", "launcher.use_array=true", "launcher.array_parallelism=4"]


def test_sweep_submits_one_array_and_a_restarted_driver_reattaches_its_tasks(slurm_cluster, tmp_path):
    sweep_dir = tmp_path / f"sw-{uuid.uuid4().hex[:8]}"
    cmd = [sys.executable, "-m", "pai_sweep", *ARRAY_SWEEP, f"sweep.dir={sweep_dir}"]
    with open(tmp_path / "first.log", "w") as log:
        first = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not (running := slurm("squeue", "-h", "-r", "-t", "R", "-n", f"pai-{sweep_dir.name}-0..3", "-o", "%i").split()):
            assert first.poll() is None and time.monotonic() < deadline, (tmp_path / "first.log").read_text()[-3000:]
            time.sleep(0.5)
    finally:
        first.kill()  # the driver dies mid-array (SIGKILL: no clean-up); the array's tasks keep going
        first.wait()

    second = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=300)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    trials = optuna.load_study(study_name="default", storage=f"sqlite:///{sweep_dir / 'study.db'}").get_trials()
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 4
    assert not any(t.user_attrs.get("reason") == STALE_REASON for t in trials)  # followed, not run again
    job_ids = [json.loads((sweep_dir / "trials" / str(t.number) / "launch.json").read_text())["job_id"] for t in trials]
    array = job_ids[0].split("_")[0]
    assert job_ids == [f"{array}_{n}" for n in range(4)], job_ids  # one array, task N is trial N
    assert set(running) <= set(job_ids)
    assert jobs_named(f"pai-{sweep_dir.name}-") == sorted(job_ids)  # nothing submitted twice
    accounting = slurm("sacct", "-X", "-P", "-n", "-o", "JobID,State", "-j", ",".join(job_ids))
    assert sorted(accounting.split()) == sorted(f"{i}|COMPLETED" for i in job_ids), accounting
    for t in trials:
        assert t.values and t.user_attrs["status"] == "complete"
        log = (sweep_dir / "trials" / str(t.number) / "worker.log").read_text()
        assert re.findall(r"job (\S+), run (\d+)", log) == [(f"{array}_{t.number}", "1")]  # each task ran once


def test_requeue_and_scancel_act_on_one_task_of_an_array(slurm_cluster, make_trial):
    trials = [make_trial(0, epochs=3), make_trial(1, epochs=3), make_trial(2, epochs=30)]
    sweep_dir = trials[0].parents[1]
    launcher = make_launcher(launcher_cfg("launcher.use_array=true"), sweep_dir, 3)
    jobs = launcher.submit_many(list(enumerate(trials)))
    array = jobs[0].info["job_id"].split("_")[0]
    assert [j.info["job_id"] for j in jobs] == [f"{array}_{n}" for n in range(3)]

    slurm("scancel", jobs[2].info["job_id"])  # cancel one task: only that trial fails
    state, _ = wait_for(launcher, jobs[2])
    assert state is JobState.FAILED and jobs[2].reason.startswith("cancelled by the scheduler"), jobs[2].reason

    wait_for(launcher, jobs[0], until=(JobState.RUNNING,))
    while not read_metrics(trials[0]):
        assert launcher.poll(jobs[0]) is JobState.RUNNING, jobs[0].reason  # preempt mid-training
        time.sleep(0.2)
    slurm("scontrol", "requeue", jobs[0].info["job_id"])
    state, _ = wait_for(launcher, jobs[0], until=(JobState.PENDING, JobState.FAILED))
    assert state is JobState.PENDING, jobs[0].reason
    assert launcher.poll(jobs[1]) in (JobState.RUNNING, JobState.FINISHED, JobState.PENDING)  # the rest goes on
    slurm("scontrol", "update", f"JobId={jobs[0].info['job_id']}", "StartTime=now")
    for job in jobs[:2]:
        state, seen = wait_for(launcher, job)
        assert state is JobState.FINISHED and JobState.FAILED not in seen, job.reason
        assert read_result(job.trial_dir).ok
    runs = [re.findall(r"job (\S+), run (\d+)", (t / "worker.log").read_text()) for t in trials[:2]]
    assert runs == [[(f"{array}_0", "1"), (f"{array}_0", "2")], [(f"{array}_1", "1")]]  # only task 0 ran again
    assert [r.epoch for r in read_metrics(trials[0])] == [0, 1, 2]
    # nothing was submitted again (the task cancelled while pending leaves no record in SLURM's accounting)
    assert jobs_named(f"pai-{sweep_dir.name}-") == [f"{array}_0", f"{array}_1"]
