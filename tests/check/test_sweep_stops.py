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


def test_a_failed_check_keeps_the_folder_when_its_verdict_names_a_file_there(tmp_path, monkeypatch):
    """A capacity test's failure points at its worker.log inside the sweep folder: the folder stays for it."""
    import pytest

    import pai_sweep.driver as driver
    from pai_sweep.compose import compose
    from pai_sweep.errors import CheckFailed

    sweep_dir = tmp_path / "s"
    log = sweep_dir / "check" / "capacity_test" / "worker.log"

    def failing_check(cfg, launcher, stream):
        log.parent.mkdir(parents=True)
        log.write_text("the library's traceback")
        raise CheckFailed(f"pai-sweep check found 1 problem(s): capacity test failed: ...; log: {log}")

    monkeypatch.setattr(driver, "_run_sweep", failing_check)
    cfg = compose([f"sweep.dir={sweep_dir}", "tracking=off", "launcher.warm_start=false"])
    with pytest.raises(CheckFailed):
        driver.run_sweep(cfg)
    assert log.read_text() == "the library's traceback"
