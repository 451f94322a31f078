"""The driver starts the trials it makes ready in one refill together (launcher.submit_many), so a
launcher can submit them as one batch (launcher=slurm use_array: one job array); slots still refill as trials end."""

from __future__ import annotations

from pathlib import Path

import pytest

from optuna.trial import TrialState
from test_driver import fake_spawn, sweep_cfg, trials_of

from pai_sweep.driver import run_sweep
from pai_sweep.errors import LauncherError, SweepError
from pai_sweep.launchers.local import LocalLauncher


class Recording(LocalLauncher):
    def __init__(self, *args, refuse: int | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.batches: list[list[int]] = []
        self.refuse = refuse

    def submit_many(self, trials):
        self.batches.append([number for number, _ in trials])
        started = iter(super().submit_many([t for t in trials if t[0] != self.refuse]))
        return [LauncherError(f"refused trial {n}") if n == self.refuse else next(started) for n, _ in trials]


def test_a_refill_is_one_batch_and_a_refused_trial_fails_alone(tmp_path):
    cfg = sweep_cfg(tmp_path, "sweep.n_trials=5", "sweep.in_flight=3", "launcher.devices=cpu")
    launcher = Recording(cfg.launcher, Path(cfg.sweep.dir), 3, spawn=fake_spawn, refuse=1)
    run_sweep(cfg, launcher=launcher)
    assert launcher.batches[0] == [0, 1, 2]  # the start of the sweep: every slot in one batch
    assert sorted(n for batch in launcher.batches for n in batch) == list(range(5))  # each trial submitted once
    assert all(len(batch) <= 3 for batch in launcher.batches) and len(launcher.batches) >= 2  # refills as slots free
    trials = trials_of(tmp_path)
    assert trials[1].state == TrialState.FAIL and trials[1].user_attrs["reason"] == "refused trial 1"
    assert [t.state for t in trials if t.number != 1] == [TrialState.COMPLETE] * 4


class Refusing(Recording):
    """Every submission fails the same way, as sbatch does for resources the partition cannot give."""

    def submit_many(self, trials):
        self.batches.append([number for number, _ in trials])
        error = LauncherError("sbatch: error: Batch job submission failed: Invalid generic resource (gres) specification")
        return [error for _ in trials]  # one batch, one error: one submission


def test_the_same_submission_error_twice_stops_the_sweep(tmp_path, capsys):
    cfg = sweep_cfg(tmp_path, "sweep.n_trials=8", "sweep.in_flight=2", "sweep.max_failures=8", "launcher.devices=cpu")
    launcher = Refusing(cfg.launcher, Path(cfg.sweep.dir), 2, spawn=fake_spawn)
    with pytest.raises(SweepError) as err:
        run_sweep(cfg, launcher=launcher)
    assert str(err.value).startswith("sweep stopped: two submissions in a row failed with the same error, every trial would: "
                                     "sbatch: error: Batch job submission failed: Invalid generic resource")
    assert "\n" not in str(err.value)
    assert len(launcher.batches) == 2  # the first batch (two trials, one error) and one more: not all eight trials
    trials = trials_of(tmp_path)
    assert TrialState.RUNNING not in [t.state for t in trials]
    assert sum(1 for t in trials if t.state == TrialState.FAIL and "Invalid generic resource" in t.user_attrs["reason"]) <= 4


def test_different_submission_errors_do_not_stop_the_sweep(tmp_path):
    cfg = sweep_cfg(tmp_path, "sweep.n_trials=4", "sweep.in_flight=1", "launcher.devices=cpu")
    launcher = Recording(cfg.launcher, Path(cfg.sweep.dir), 1, spawn=fake_spawn, refuse=1)
    run_sweep(cfg, launcher=launcher)  # one refusal between successes: the sweep goes on
    assert [t.state for t in trials_of(tmp_path)] == [TrialState.COMPLETE, TrialState.FAIL, TrialState.COMPLETE, TrialState.COMPLETE]
