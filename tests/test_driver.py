"""Driver behaviour that needs no training: bad input before anything runs, resume rules, the
baseline-first efficiency flow, faults. Trials run as real processes of a small stand-in worker
(writes result.json from run.yaml) through the real local launcher and a real sqlite study; the
real worker and PerforatedAI are covered in test_driver_e2e.py."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from pai_sweep.compose import compose
from pai_sweep.driver import run_sweep
from pai_sweep.errors import ConfigError, SweepError
from pai_sweep.launchers.local import LocalLauncher
from pai_sweep.objective import CONSTRAINT

# Stand-in worker. Mode per launch order from FAKE_MODES ("1:noresult,2:nan"); a plain model
# (dendrites off) scores 90 with 1,000 params, each allowed dendrite adds 3 points and 1,000 params.
FAKE = r"""
import json, os, sys, yaml
from pathlib import Path
here = Path.cwd()
rank = sorted(int(p.name) for p in here.parent.iterdir() if p.name.isdigit()).index(int(here.name))
mode = dict(m.split(":") for m in os.environ.get("FAKE_MODES", "").split(",") if ":" in m).get(str(rank), "ok")
run = yaml.safe_load(open("run.yaml"))
d = run["dendrites"]
k = int(d["max_dendrites"]) if d["enabled"] else 0
val = 90.0 + 3 * k - (0 if d["enabled"] else 2)
if mode == "noresult":
    sys.exit(0)
if mode == "nan":
    val = float("nan")
if mode == "sleep":
    import time; time.sleep(3)
if mode == "low":  # far below the others, epoch by epoch: the median pruner stops it
    import time
    for epoch in range(8):
        with open("metrics.jsonl", "a") as fh:
            print(json.dumps({"epoch": epoch, "val": 10.0, "dendrites": k}), file=fh)
        time.sleep(0.4)
for epoch in range(3):
    print(json.dumps({"epoch": epoch, "val": val - 3 + epoch, "dendrites": k}), file=open("metrics.jsonl", "a"))
json.dump({"status": "complete", "reason": "epoch_cap", "best_val": val, "best_test": val, "params": 1000 * (k + 1),
           "base_params": 1000, "dendrites": k, "epochs": 3, "maximizing": True}, open("result.json", "w"))
"""


def fake_spawn(trial_dir, env=None, log_path=None):
    with open(log_path, "ab") as log:
        return subprocess.Popen([sys.executable, "-c", FAKE], cwd=trial_dir, env=env, stdin=subprocess.DEVNULL,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def sweep_cfg(tmp_path: Path, *overrides: str):
    return compose([
        f"sweep.dir={tmp_path / 'sweep'}", "tracking=off", "launcher.poll_interval=0.05", "sweep.n_trials=3", "sweep.check_first=false",
        "sweep.space={dendrites.max_dendrites:{type:int,low:0,high:3}}", *overrides,
    ])


def run(cfg):
    launcher = LocalLauncher(cfg.launcher, Path(cfg.sweep.dir), int(cfg.sweep.in_flight), spawn=fake_spawn)
    return run_sweep(cfg, launcher=launcher)


def trials_of(tmp_path: Path) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name="default", storage=f"sqlite:///{tmp_path / 'sweep' / 'study.db'}").get_trials()


@pytest.mark.parametrize(
    "overrides, error, words",
    [
        (["sweep.space={dendrites.max_dendrites:{type:int,low:3,high:1}}"], SweepError, "low=3 is above high=1"),
        (["objective=efficiency", "sweep.pruner=median"], SweepError, "single-value objective"),
        (["+objective.penalties.overfiting=1.0"], ConfigError, "unknown rule id"),
        (["objective.direction=minimize"], ConfigError, "contradicts dendrites.maximizing_score=True"),
        (["sweep.sampler=grid", "sweep.space={train.optimizer.args.lr:{type:float,low:0.001,high:0.1}}"], SweepError, "needs a step"),
    ],
)
def test_bad_input_fails_before_the_sweep_folder_exists(tmp_path, overrides, error, words):
    with pytest.raises(error, match=words):
        run(sweep_cfg(tmp_path, *overrides))
    assert not (tmp_path / "sweep").exists()


def test_resume_counts_the_total_and_refuses_a_changed_search(tmp_path):
    first = run(sweep_cfg(tmp_path, "sweep.n_trials=2"))
    assert first["counted"] == 2
    # More trials on the same sweep: the total is what the config says, not "N more".
    again = run(sweep_cfg(tmp_path, "sweep.n_trials=3"))
    assert again["counted"] == 3 and len(trials_of(tmp_path)) == 3
    with pytest.raises(SweepError, match=r"sweep\.space\.dendrites\.max_dendrites\.high changed.*new sweep\.name"):
        run(sweep_cfg(tmp_path, "sweep.space={dendrites.max_dendrites:{type:int,low:0,high:2}}"))
    with pytest.raises(SweepError, match=r"model\.hidden, model\.name changed"):
        run(sweep_cfg(tmp_path, "model=mlp", "model.hidden=[8]", "sweep.n_trials=3"))


def test_efficiency_runs_the_baseline_first_and_records_faults(tmp_path, monkeypatch, capsys):
    # Launch order: 0 baseline (slow: trial 1 ends first and waits for it), 2 exits 0 without result.json, 3 reports NaN.
    monkeypatch.setenv("FAKE_MODES", "0:sleep,2:noresult,3:nan")
    summary = run(sweep_cfg(tmp_path, "objective=efficiency", "objective.tolerance=1.0", "sweep.n_trials=4"))
    assert "trial 1 ended; waits for the baseline" in capsys.readouterr().out
    trials = trials_of(tmp_path)
    base = trials[0]
    assert base.user_attrs["origin"] == "baseline" and base.state == TrialState.COMPLETE
    assert base.values == [88.0, 1000.0] and not base.params
    run_yaml = Path(base.user_attrs["trial_dir"]) / "run.yaml"
    assert "enabled: false" in run_yaml.read_text()
    assert trials[2].state == TrialState.FAIL and trials[2].user_attrs["reason"] == "exited without result.json (exit code 0)"
    assert trials[3].state == TrialState.FAIL and "no finite val score" in trials[3].user_attrs["reason"]
    scored = [t for t in trials if t.state == TrialState.COMPLETE and t.user_attrs["origin"] == "sampler"]
    assert len(scored) == 2 and summary["counted"] == 4 and trials[1] in scored
    for t in scored:
        # Feasible when score >= 88 - 1: every count of dendrites here scores at least 90.
        assert t.constraints[CONSTRAINT] == pytest.approx(87.0 - t.values[0]) and t.user_attrs["feasible"]
        assert t.user_attrs["baseline_score"] == 88.0
    # The driver wrote result.json for the trial that left none.
    assert json.loads((Path(trials[2].user_attrs["trial_dir"]) / "result.json").read_text())["status"] == "failed"


def test_every_trial_reports_its_epochs_and_the_median_pruner_still_prunes(tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_MODES", "1:low")
    run(sweep_cfg(tmp_path, "sweep.pruner=median", "sweep.pruner_startup=1", "sweep.pruner_warmup=0",
                  "sweep.n_trials=2", "sweep.in_flight=1"))
    first, low = trials_of(tmp_path)[:2]
    best = first.user_attrs["best_val"]
    assert first.state == TrialState.COMPLETE and first.intermediate_values == {e: best - 3 + e for e in range(3)}
    assert low.state == TrialState.PRUNED and low.user_attrs["reason"].startswith("pruned at epoch")
    assert set(low.intermediate_values.values()) == {10.0} and len(low.intermediate_values) < 8


def test_too_many_failures_stop_the_sweep_with_a_clear_message(tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_MODES", "0:noresult,1:noresult,2:noresult,3:noresult")
    with pytest.raises(SweepError, match=r"sweep stopped: 2 trials failed \(sweep.max_failures=2\).*run the same command to resume"):
        run(sweep_cfg(tmp_path, "sweep.max_failures=2", "sweep.n_trials=4", "sweep.in_flight=1"))
    summary = json.loads((tmp_path / "sweep" / "summary.json").read_text())
    assert summary["stopped"].startswith("sweep stopped") and summary["states"] == {"fail": 2}


def test_max_failures_is_exact_with_trials_in_flight(tmp_path, monkeypatch):
    # Every trial fails at once; with 2 in flight both can end in the same poll: the sweep still stops at 3.
    monkeypatch.setenv("FAKE_MODES", ",".join(f"{i}:noresult" for i in range(8)))
    with pytest.raises(SweepError, match=r"sweep stopped: 3 trials failed \(sweep.max_failures=3\)"):
        run(sweep_cfg(tmp_path, "sweep.max_failures=3", "sweep.n_trials=8", "sweep.in_flight=2"))
    reasons = [t.user_attrs.get("reason") for t in trials_of(tmp_path) if t.state == TrialState.FAIL]
    assert reasons.count("exited without result.json (exit code 0)") == 3, reasons


def _cli_sweep(tmp_path, monkeypatch, capsys, *overrides):
    import pai_sweep.driver
    from pai_sweep.cli import main

    import pai_sweep.launchers

    fake = lambda cfg, sweep_dir, in_flight: LocalLauncher(cfg, sweep_dir, in_flight, spawn=fake_spawn)  # noqa: E731
    # the CLI makes the local launcher itself, before the driver's imports (its warm server boots early)
    monkeypatch.setattr(pai_sweep.launchers, "make_launcher", fake)
    monkeypatch.setattr(pai_sweep.driver, "make_launcher", fake)
    code = main(["sweep", f"sweep.dir={tmp_path / 'sweep'}", "tracking=off", "launcher.poll_interval=0.05", "sweep.check_first=false",
                 "sweep.space={dendrites.max_dendrites:{type:int,low:0,high:3}}", *overrides])
    return code, capsys.readouterr().err


def test_exit_codes(tmp_path, monkeypatch, capsys):
    assert _cli_sweep(tmp_path / "ok", monkeypatch, capsys, "sweep.n_trials=2") == (0, "")
    monkeypatch.setenv("FAKE_MODES", ",".join(f"{i}:noresult" for i in range(4)))
    code, err = _cli_sweep(tmp_path / "none", monkeypatch, capsys, "sweep.n_trials=2", "sweep.max_failures=5")
    assert code == 1 and err.count("\n") == 1, err
    assert err.startswith("pai-sweep: error: sweep default ended with no completed trial (2 fail); last: trial 1: exited without result.json")
    code, err = _cli_sweep(tmp_path / "stop", monkeypatch, capsys, "sweep.n_trials=4", "sweep.max_failures=2", "sweep.in_flight=1")
    assert code == 3 and err.count("\n") == 1 and err.startswith("pai-sweep: error: sweep stopped: 2 trials failed"), err


LADDER_SPACE = ("sweep.space={downsize.width_mult:{type:float,low:0.25,high:1.0,step:0.25},"
                "dendrites.max_dendrites:{type:int,low:0,high:3},dendrites.n_epochs_to_switch:{type:int,low:2,high:5}}")


def test_a_guided_efficiency_sweep_starts_with_the_size_ladder_once(tmp_path, capsys):
    # 12 trials: TPE's start-up is 6 draws, half of them the ladder: widths 0.75, 0.5, 0.25 (down from the
    # original 1.0), each with the most dendrites and the latest switch the space allows; the sampler draws the rest.
    cfg = sweep_cfg(tmp_path, "objective=efficiency", "downsize=width", LADDER_SPACE, "sweep.n_trials=12", "sweep.in_flight=1")
    run(cfg)
    assert "size ladder: the first 3 sampler trial(s) run width_mult=0.75" in capsys.readouterr().out
    trials = trials_of(tmp_path)
    assert trials[0].user_attrs["origin"] == "baseline"
    ladder = [t for t in trials if t.user_attrs.get("design") == "size_ladder"]
    assert [t.number for t in ladder] == [1, 2, 3] and all(t.user_attrs["origin"] == "sampler" for t in ladder)
    assert [t.params["downsize.width_mult"] for t in ladder] == [0.75, 0.5, 0.25]
    assert {(t.params["dendrites.max_dendrites"], t.params["dendrites.n_epochs_to_switch"]) for t in ladder} == {(3, 5)}
    # resuming with more trials does not climb the ladder again
    run(sweep_cfg(tmp_path, "objective=efficiency", "downsize=width", LADDER_SPACE, "sweep.n_trials=13", "sweep.in_flight=1"))
    assert sum(t.user_attrs.get("design") == "size_ladder" for t in trials_of(tmp_path)) == 3


@pytest.mark.parametrize("why", [["sweep.size_ladder=off"], ["sweep.rule_trials=false"], ["objective=accuracy"]])
def test_no_size_ladder_when_off_unguided_or_not_about_size(tmp_path, why):
    run(sweep_cfg(tmp_path, "objective=efficiency", "downsize=width", LADDER_SPACE, "sweep.n_trials=4", *why))
    assert not any(t.user_attrs.get("design") for t in trials_of(tmp_path))


def test_a_ladder_trial_run_again_after_a_dead_driver_is_still_a_ladder_trial(tmp_path):
    cfg = sweep_cfg(tmp_path, "objective=efficiency", "downsize=width", LADDER_SPACE, "sweep.n_trials=4", "sweep.in_flight=1")
    run(cfg)
    ladder_trial = next(t for t in trials_of(tmp_path) if t.user_attrs.get("design") == "size_ladder")
    # as a driver killed mid-trial leaves it: RUNNING in the study, no result.json, no live worker
    import sqlite3

    with sqlite3.connect(tmp_path / "sweep" / "study.db") as con:
        con.execute("UPDATE trials SET state='RUNNING', datetime_complete=NULL WHERE number=?", (ladder_trial.number,))
        con.execute("DELETE FROM trial_values WHERE trial_id=(SELECT trial_id FROM trials WHERE number=?)", (ladder_trial.number,))
    (Path(ladder_trial.user_attrs["trial_dir"]) / "result.json").unlink()
    run(cfg)
    rerun = next(t for t in trials_of(tmp_path) if t.user_attrs.get("rerun_of") == ladder_trial.number)
    assert rerun.user_attrs["design"] == "size_ladder" and rerun.user_attrs["origin"] == "sampler"
    assert rerun.params == ladder_trial.params and rerun.state == TrialState.COMPLETE
