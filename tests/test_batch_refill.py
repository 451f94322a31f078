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
from pai_sweep.sweep.study import STOPPED_REASON


class Recording(LocalLauncher):
    def __init__(self, *args, refuse: int | None = None, errors: dict[int, str] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.batches: list[list[int]] = []
        self.errors = dict(errors or {})  # trial number -> the error its submission gets
        if refuse is not None:
            self.errors[refuse] = f"refused trial {refuse}"
        self.cancelled: list[int] = []

    def cancel(self, job, reason=""):
        self.cancelled.append(job.trial_number)
        super().cancel(job, reason)

    def submit_many(self, trials):
        self.batches.append([number for number, _ in trials])
        started = iter(super().submit_many([t for t in trials if t[0] not in self.errors]))
        return [LauncherError(self.errors[n]) if n in self.errors else next(started) for n, _ in trials]


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


def test_two_different_submission_errors_in_a_row_do_not_stop_the_sweep(tmp_path):
    cfg = sweep_cfg(tmp_path, "sweep.n_trials=4", "sweep.in_flight=1", "sweep.max_failures=3", "launcher.devices=cpu")
    errors = {1: "sbatch: error: Invalid account", 2: "sbatch: error: Invalid qos specification"}
    launcher = Recording(cfg.launcher, Path(cfg.sweep.dir), 1, spawn=fake_spawn, errors=errors)
    run_sweep(cfg, launcher=launcher)  # two refusals in a row, but not the same one: each trial fails alone
    assert [t.state for t in trials_of(tmp_path)] == [TrialState.COMPLETE, TrialState.FAIL, TrialState.FAIL, TrialState.COMPLETE]


def test_a_repeated_error_in_one_batch_stops_only_after_every_started_job_is_recorded(tmp_path, monkeypatch):
    """Trials 0 and 1 refused alike in the batch that also starts trial 2: the sweep stops, and trial 2's job is
    recorded first, so the stop cancels it (on SLURM an unrecorded job would run on, untracked)."""
    # trial 2's stand-in worker sleeps: one that finished before the stop was not cancelled (1 run in 3 failed so)
    monkeypatch.setenv("FAKE_MODES", "0:sleep,2:sleep")  # by launch rank: trial 2 is rank 0 or 2, as folders exist
    cfg = sweep_cfg(tmp_path, "sweep.n_trials=6", "sweep.in_flight=3", "launcher.devices=cpu")
    launcher = Recording(cfg.launcher, Path(cfg.sweep.dir), 3, spawn=fake_spawn,
                         errors={0: "sbatch: error: Invalid partition", 1: "sbatch: error: Invalid partition"})
    with pytest.raises(SweepError, match="two submissions in a row failed with the same error"):
        run_sweep(cfg, launcher=launcher)
    assert launcher.batches[0] == [0, 1, 2] and 2 in launcher.cancelled
    trials = trials_of(tmp_path)
    assert TrialState.RUNNING not in [t.state for t in trials]
    assert trials[2].user_attrs["reason"] == STOPPED_REASON
    assert trials[2].user_attrs["requeued"] is True  # one mark for every trial queued to run again (study.queued_again)


def test_different_submission_errors_do_not_stop_the_sweep(tmp_path):
    cfg = sweep_cfg(tmp_path, "sweep.n_trials=4", "sweep.in_flight=1", "launcher.devices=cpu")
    launcher = Recording(cfg.launcher, Path(cfg.sweep.dir), 1, spawn=fake_spawn, refuse=1)
    run_sweep(cfg, launcher=launcher)  # one refusal between successes: the sweep goes on
    assert [t.state for t in trials_of(tmp_path)] == [TrialState.COMPLETE, TrialState.FAIL, TrialState.COMPLETE, TrialState.COMPLETE]
