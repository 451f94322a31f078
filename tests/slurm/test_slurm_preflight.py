"""Before any submission the driver checks the partition can hold a trial's request (real cluster: CPU only)."""

from __future__ import annotations

import pytest

from pai_sweep.cli import main
from pai_sweep.errors import LauncherError
from pai_sweep.launchers import make_launcher
from pai_sweep.launchers.slurm_queue import _gpus

from slurm_helpers import launcher_cfg


def test_gres_strings():
    assert [_gpus(g) for g in ("(null)", "gpu:4", "gpu:a100:2(S:0-1)", "gpu:1,shard:8", "gpu", "shard:4")] == [0, 4, 2, 1, 1, 0]


def test_gpus_on_a_cpu_partition_stop_before_any_submission(slurm_cluster, tmp_path, capsys):
    with pytest.raises(LauncherError, match=r"has no GPUs .* set launcher.gpus_per_trial=0"):
        make_launcher(launcher_cfg("launcher.gpus_per_trial=1"), tmp_path / "sw", 1)
    with pytest.raises(LauncherError, match=r"at most \d+ CPUs per node .* set launcher.cpus_per_trial=\d+ or less"):
        make_launcher(launcher_cfg("launcher.cpus_per_trial=4096"), tmp_path / "sw", 1)
    with pytest.raises(LauncherError, match=r"GB per node .* set launcher.mem_gb=\d+ or less"):
        make_launcher(launcher_cfg("launcher.mem_gb=100000"), tmp_path / "sw", 1)
    make_launcher(launcher_cfg(), tmp_path / "sw", 1).close()  # what fits is accepted

    # the sweep with the slurm preset's default (one GPU per trial) on this CPU-only cluster: one line, nothing made
    sweep_dir = tmp_path / "sweep"
    code = main(["launcher=slurm", f"sweep.dir={sweep_dir}", "tracking=off", "sweep.n_trials=1", "sweep.check_first=false"])
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert code == 2 and len(err) == 1 and "launcher.gpus_per_trial=0" in err[0]
    assert not (sweep_dir / "trials").exists()


def test_an_sbatch_refusal_the_preflight_cannot_see_stops_the_sweep_at_its_second_time(slurm_cluster, tmp_path, capsys):
    """A constraint no node has: sbatch refuses every job the same way; the sweep stops after two, not after
    burning its budget (and the override of a free-form dict, additional_parameters, is accepted)."""
    import optuna
    from optuna.trial import TrialState

    sweep_dir = tmp_path / "sweep"
    code = main(["model=mlp", "model.hidden=[16]", "dendrites=linear_only", "data.limit=300", "train.max_epochs=2",
                 "sweep.n_trials=6", "sweep.in_flight=1", "sweep.max_failures=6", "sweep.check_first=false", "tracking=off",
                 "launcher=slurm", "launcher.gpus_per_trial=0", "launcher.cpus_per_trial=1", "launcher.poll_interval=1",
                 "launcher.additional_parameters={constraint:nosuchfeature}", f"sweep.dir={sweep_dir}"])
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert code == 2 and "two submissions in a row failed with the same error" in err[-1] and "Invalid feature" in err[-1]
    trials = optuna.load_study(study_name="default", storage=f"sqlite:///{sweep_dir / 'study.db'}").get_trials()
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.FAIL]
