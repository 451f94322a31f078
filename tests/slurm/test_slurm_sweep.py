"""A shrunk sweep with launcher=slurm through the real CLI: its driver is killed while SLURM jobs run,
and the same command finishes the sweep by following those jobs (none is submitted twice)."""

from __future__ import annotations

import json
from pathlib import Path
import subprocess
import sys
import time
import uuid

import optuna
import pytest
from optuna.trial import TrialState
from slurm_helpers import jobs_named, slurm

from pai_sweep.sweep.study import STALE_REASON

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

SHRUNK = ["model=mlp", "model.hidden=[16]", "dendrites=linear_only", "data.limit=300", "train.max_epochs=4",
          "train.device=cpu", "train.graphs=end", "sweep.space={dendrites.n_epochs_to_switch:{type:int,low:1,high:2}}",
          "sweep.n_trials=2", "sweep.in_flight=2", "sweep.derived_trials=false", "sweep.rule_trials=false",
          "sweep.check_first=false", "tracking=off", "launcher=slurm", "launcher.gpus_per_trial=0",
          "launcher.cpus_per_trial=1",
          "launcher.poll_interval=1"]


def test_sweep_on_slurm_survives_a_driver_restart(slurm_cluster, tmp_path):
    sweep_dir = tmp_path / f"sw-{uuid.uuid4().hex[:8]}"
    cmd = [sys.executable, "-m", "pai_sweep", *SHRUNK, f"sweep.dir={sweep_dir}"]
    with open(tmp_path / "first.log", "w") as log:
        first = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while len(running := slurm("squeue", "-h", "-t", "R", "-n", ",".join(
                f"pai-{sweep_dir.name}-{n}" for n in (0, 1)), "-o", "%i").split()) < 2:
            assert first.poll() is None and time.monotonic() < deadline, (tmp_path / "first.log").read_text()[-3000:]
            time.sleep(0.5)
    finally:
        first.kill()  # the driver dies (SIGKILL: no clean-up); its jobs keep running
        first.wait()

    second = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=240)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    study = optuna.load_study(study_name="default", storage=f"sqlite:///{sweep_dir / 'study.db'}")
    trials = study.get_trials()
    assert [t.state for t in trials] == [TrialState.COMPLETE, TrialState.COMPLETE]
    assert not any(t.user_attrs.get("reason") == STALE_REASON for t in trials)
    job_ids = [json.loads((sweep_dir / "trials" / str(t.number) / "launch.json").read_text())["job_id"] for t in trials]
    assert sorted(job_ids) == sorted(running)  # the jobs that ran when the driver died finished the trials
    assert jobs_named(f"pai-{sweep_dir.name}-") == sorted(job_ids)  # and no trial was submitted twice
    for t in trials:
        assert t.values and t.user_attrs["status"] == "complete" and "best_val" in t.user_attrs
        assert "resume: true" in (sweep_dir / "trials" / str(t.number) / "run.yaml").read_text()  # preemption resumes


def test_trials_on_slurm_branch_from_a_branch_point_in_the_shared_sweep_folder(slurm_cluster, tmp_path):
    """Branching on SLURM: the parent's job keeps its state before the first switch in the (shared) sweep folder,
    and later trials' jobs that differ only in post-switch knobs start from it."""
    sweep_dir = tmp_path / f"br-{uuid.uuid4().hex[:8]}"
    shrunk = [o for o in SHRUNK if not o.startswith(("sweep.space", "sweep.n_trials", "sweep.in_flight", "train.max_epochs"))]
    cmd = [sys.executable, "-m", "pai_sweep", *shrunk, "sweep=empty", "sweep.name=default",
           "sweep.space={dendrites.max_dendrites:{type:int,low:1,high:3}}", "sweep.sampler=random", "sweep.n_trials=3",
           "sweep.in_flight=1", "dendrites.n_epochs_to_switch=2", "train.optimizer.args.lr=0.05", "train.max_epochs=12",
           f"sweep.dir={sweep_dir}"]
    done = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    trials = optuna.load_study(study_name="default", storage=f"sqlite:///{sweep_dir / 'study.db'}").get_trials()
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 3
    assert (sweep_dir / "trials" / "0" / "branch" / "branch.json").exists()
    for t in trials[1:]:
        result = json.loads((sweep_dir / "trials" / str(t.number) / "result.json").read_text())
        parent = t.user_attrs["branched_from"]
        assert parent < t.number and result["extra"]["started_from"]["kind"] == "branch"
        point = Path(result["extra"]["started_from"]["from"])  # before the parent's first switch or a later point
        assert point.parent == sweep_dir / "trials" / str(parent) and point.name.startswith("branch")
        assert json.loads((sweep_dir / "trials" / str(t.number) / "launch.json").read_text())["job_id"]  # a SLURM job ran it
