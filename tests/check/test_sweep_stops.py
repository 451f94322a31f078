"""A sweep whose integration cannot work stops after the check, with its verdict, before any trial."""

from __future__ import annotations

from pathlib import Path

from pai_sweep.cli import main


def test_broken_integration_stops_the_sweep_before_any_trial(tmp_path, capsys):
    sweep_dir = tmp_path / "s"
    code = main(["model=mlp", "dendrites=transformer", "data.limit=120", "train.device=cpu", "tracking=off",
                 "sweep.n_trials=2", f"sweep.dir={sweep_dir}"])
    err = capsys.readouterr().err
    assert code == 2
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and "pai-sweep check found 2 problem(s)" in lines[0]
    assert ".body.1 expects [-1, 0]" in lines[0]
    assert not sweep_dir.exists()  # nothing ran: no half-made sweep folder is left to resume


def test_a_failed_check_keeps_a_folder_that_existed_before(tmp_path, capsys):
    sweep_dir = tmp_path / "s"
    sweep_dir.mkdir()
    (sweep_dir / "notes.txt").write_text("mine")
    code = main(["model=mlp", "dendrites=transformer", "data.limit=120", "train.device=cpu", "tracking=off",
                 "sweep.n_trials=2", f"sweep.dir={sweep_dir}"])
    assert code == 2 and "pai-sweep check found" in capsys.readouterr().err
    assert (sweep_dir / "notes.txt").read_text() == "mine"
    trials = sweep_dir / "trials"
    assert not trials.exists() or not any(Path(trials).iterdir())
