"""The slurm launcher on a real SLURM cluster: real jobs, real worker, real training (shrunk)."""

from __future__ import annotations

import json
import subprocess

import pytest

from pai_sweep.errors import LauncherError
from pai_sweep.launchers import make_launcher
from pai_sweep.launchers.base import JobState
from pai_sweep.trial_files import read_metrics, read_result

from slurm_helpers import jobs_named, launcher_cfg, slurm, wait_for

pytestmark = pytest.mark.slurm


def test_trials_run_as_slurm_jobs(slurm_cluster, make_trial):
    trials = [make_trial(0, epochs=2), make_trial(1, epochs=2)]
    sweep_dir = trials[0].parents[1]
    launcher = make_launcher(launcher_cfg(), sweep_dir, 2)
    jobs = [launcher.submit(n, d) for n, d in enumerate(trials)]
    for job in jobs:
        state, seen = wait_for(launcher, job)
        assert state is JobState.FINISHED, job.reason
        assert JobState.FAILED not in seen
        result = read_result(job.trial_dir)
        assert result is not None and result.ok and result.epochs == 2
        launch = json.loads((job.trial_dir / "launch.json").read_text())
        assert launch["job_id"] == job.info["job_id"] and launch["node"] == "localhost"
        assert (sweep_dir / "slurm" / f"{launch['job_id']}_0_log.out").exists()
    ids = [job.info["job_id"] for job in jobs]
    assert jobs_named(f"pai-{sweep_dir.name}-") == sorted(ids)
    assert all(f"{i}|COMPLETED" in slurm("sacct", "-X", "-P", "-n", "-o", "JobID,State", "-j", i) for i in ids)
    # polling is cached: a tight loop of polls asks the scheduler at most once more
    calls = launcher.queue.calls
    launcher.queue.active.add(ids[0])
    for _ in range(50):
        launcher.poll(jobs[0])
    assert launcher.queue.calls - calls <= 1


def test_preempted_trial_is_requeued_and_completes(slurm_cluster, make_trial):
    """Preempted twice: by `scontrol requeue`, then as submitit's own preemption (SIGTERM, then USR2 ->
    WorkerJob.checkpoint -> requeue). Each time the trial goes back to the queue, never to FAILED."""
    trial = make_trial(0, epochs=3)
    launcher = make_launcher(launcher_cfg(), trial.parents[1], 1)
    job = launcher.submit(0, trial)
    job_id = job.info["job_id"]
    preempt = (["scontrol", "requeue", job_id],
               ["sh", "-c", f"scancel --signal=TERM {job_id} && sleep 1 && scancel --signal=USR2 {job_id}"])
    for run, command in enumerate(preempt, start=1):
        wait_for(launcher, job, until=(JobState.RUNNING,))
        while not (read_metrics(trial) and f"run {run}\n" in (trial / "worker.log").read_text()):
            assert launcher.poll(job) is JobState.RUNNING, job.reason  # preempt mid-training
        slurm(*command)
        state, _ = wait_for(launcher, job, until=(JobState.PENDING, JobState.FAILED))
        assert state is JobState.PENDING, job.reason
        slurm("scontrol", "update", f"JobId={job_id}", "StartTime=now")  # SLURM holds a requeued job ~2 min
    state, seen = wait_for(launcher, job)
    assert state is JobState.FINISHED and JobState.FAILED not in seen, job.reason
    result = read_result(trial)
    assert result is not None and result.ok and result.epochs == 3
    log = (trial / "worker.log").read_text()
    assert all(f"job {job_id}, run {n}\n" in log for n in (1, 2, 3))  # the same job ran three times
    assert [r.epoch for r in read_metrics(trial)] == [0, 1, 2]  # restarted cleanly
    assert jobs_named(f"pai-{trial.parents[1].name}-") == [job_id]


def test_restarted_driver_reattaches_and_scancel_is_a_failure(slurm_cluster, make_trial):
    trials = [make_trial(0, epochs=3), make_trial(1, epochs=30)]
    sweep_dir = trials[0].parents[1]
    first = make_launcher(launcher_cfg(), sweep_dir, 2)
    submitted = [first.submit(n, d) for n, d in enumerate(trials)]
    wait_for(first, submitted[1], until=(JobState.RUNNING,))
    del first  # the driver dies; its jobs keep running

    second = make_launcher(launcher_cfg(), sweep_dir, 2)
    jobs = [second.reattach(n, d) for n, d in enumerate(trials)]
    assert [j.info["job_id"] for j in jobs] == [j.info["job_id"] for j in submitted]
    slurm("scancel", jobs[1].info["job_id"])
    state, _ = wait_for(second, jobs[1])
    assert state is JobState.FAILED
    assert jobs[1].reason.startswith("cancelled by the scheduler"), jobs[1].reason
    state, _ = wait_for(second, jobs[0])
    assert state is JobState.FINISHED and read_result(trials[0]).ok, jobs[0].reason
    # no trial was submitted twice, and a finished job is not re-attached
    assert jobs_named(f"pai-{sweep_dir.name}-") == sorted(j.info["job_id"] for j in submitted)
    assert make_launcher(launcher_cfg(), sweep_dir, 2).reattach(0, trials[0]) is None


def test_bad_setup_line_fails_the_job_with_the_log_tail(slurm_cluster, make_trial):
    trial = make_trial(0)
    launcher = make_launcher(launcher_cfg("launcher.setup=['source /opt/no-such-venv/bin/activate']"), trial.parents[1], 1)
    job = launcher.submit(0, trial)
    state, _ = wait_for(launcher, job)
    assert state is JobState.FAILED
    assert "FAILED" in job.reason and "/opt/no-such-venv/bin/activate: No such file or directory" in job.reason
    assert not (trial / "worker.log").exists()  # the worker never started


def test_unknown_partition_lists_the_real_partitions(slurm_cluster, tmp_path):
    with pytest.raises(LauncherError, match=r"launcher.partition='gpu' .* sinfo lists: debug"):
        make_launcher(launcher_cfg("launcher.partition=gpu"), tmp_path, 1)


def test_lost_node_requeues_or_fails_with_the_node_named(slurm_cluster, make_trial):
    """A node that dies under a requeue-able job: SLURM requeues it (the trial runs again); with
    --no-requeue the trial fails with the node failure as its reason."""
    trial = make_trial(0, epochs=30)
    cfg = launcher_cfg("+launcher.additional_parameters.additional_parameters={no-requeue: true}")
    launcher = make_launcher(cfg, trial.parents[1], 1)
    job = launcher.submit(0, trial)
    wait_for(launcher, job, until=(JobState.RUNNING,))
    try:
        slurm("scontrol", "update", "NodeName=localhost", "State=DOWN", "Reason=pai-sweep-test")
        state, _ = wait_for(launcher, job, timeout=60)
    finally:  # RESUME is refused when the node already came back by itself (ReturnToService=2)
        subprocess.run(["scontrol", "update", "NodeName=localhost", "State=RESUME"], capture_output=True, timeout=60)
    assert state is JobState.FAILED
    assert job.reason.startswith("the node died") and "localhost" in job.reason, job.reason


def test_submitit_local_runs_a_trial(make_trial):
    trial = make_trial(0, epochs=2)
    launcher = make_launcher(launcher_cfg(name="submitit_local"), trial.parents[1], 1)
    job = launcher.submit(0, trial)
    state, _ = wait_for(launcher, job)
    assert state is JobState.FINISHED, job.reason
    assert read_result(trial).ok
    assert json.loads((trial / "launch.json").read_text())["launcher"] == "submitit_local"
