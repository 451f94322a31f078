"""launcher=slurm resumes a preempted trial from its last finished epoch instead of starting over."""

from __future__ import annotations

import time

from pai_sweep.launchers import make_launcher
from pai_sweep.launchers.base import JobState
from pai_sweep.trial_files import read_metrics, read_result

from slurm_helpers import launcher_cfg, slurm, wait_for


def test_requeued_trial_resumes_where_it_stopped(slurm_cluster, make_trial):
    trial = make_trial(0, epochs=8)
    run_yaml = trial / "run.yaml"
    run_yaml.write_text(run_yaml.read_text().replace("resume: false", "resume: true"))  # as the driver writes it for slurm
    assert "resume: true" in run_yaml.read_text()
    launcher = make_launcher(launcher_cfg(), trial.parents[1], 1)
    job = launcher.submit(0, trial)
    wait_for(launcher, job, until=(JobState.RUNNING,))
    deadline = time.monotonic() + 240
    while len(read_metrics(trial)) < 2 and time.monotonic() < deadline:
        assert launcher.poll(job) is JobState.RUNNING, job.reason
        time.sleep(0.2)
    slurm("scontrol", "requeue", job.info["job_id"])
    state, _ = wait_for(launcher, job, until=(JobState.PENDING, JobState.FAILED))
    assert state is JobState.PENDING, job.reason
    slurm("scontrol", "update", f"JobId={job.info['job_id']}", "StartTime=now")
    state, seen = wait_for(launcher, job)
    assert state is JobState.FINISHED and JobState.FAILED not in seen, job.reason
    result = read_result(trial)
    assert result is not None and result.ok and result.epochs == 8, result
    assert result.extra.get("resumed_at_epoch", 0) >= 2, "the second run continued, it did not start at epoch 0"
    assert [r.epoch for r in read_metrics(trial)] == list(range(8)), "each epoch recorded once"
