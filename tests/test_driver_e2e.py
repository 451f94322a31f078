"""The default sweep end to end, shrunk, on the real worker and real PerforatedAI.

One sweep holds every kind of trial: complete, failed (an injected crash and a hang past the
time limit), pruned, rule-enqueued and derived. A second test kills the driver with SIGKILL
mid-sweep and runs the same command again.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from pai_sweep.cli import main
from pai_sweep.launchers.processes import pid_alive as _pid_alive
from pai_sweep.sweep.study import STALE_REASON, counts_toward_budget, origin

TESTS = Path(__file__).resolve().parent
# The default sweep, shrunk: a tiny MLP (it learns digits in a few epochs), 400 digits, at most
# 12 epochs, dendrites after 1-2 flat epochs.
SHRINK = [
    "model=mlp",
    "model.hidden=[16]",
    "dendrites=linear_only",
    "data.limit=400",
    "train.max_epochs=12",
    "train.graphs=end",
    "train.test_saves=false",
    "sweep.space={dendrites.n_epochs_to_switch:{type:int,low:1,high:2}}",
]

pytestmark = pytest.mark.slow


def load(sweep_dir: Path) -> optuna.Study:
    return optuna.load_study(study_name="default", storage=f"sqlite:///{sweep_dir / 'study.db'}")


class RecordingTracker:
    """Stands in for MLflow here (tests/test_tracking.py covers the real store): records the hook calls."""

    def __init__(self):
        self.calls = []

    def start_sweep(self, config):
        self.calls.append(("start", config["sweep"]["name"]))

    def log_trial(self, study_trial, trial_dir):
        self.calls.append(("trial", study_trial.number))

    def finish_sweep(self, summary, report_dir):
        self.calls.append(("finish", summary["counted"]))


def test_default_sweep_runs_two_at_a_time_with_every_kind_of_trial(tmp_path, monkeypatch, capsys):
    import pai_sweep.driver

    tracker = RecordingTracker()
    monkeypatch.setattr(pai_sweep.driver, "make_tracker", lambda cfg, experiment, sweep_dir: tracker)  # where the driver looks it up
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]))
    # Launch 0 crashes, launch 1 hangs until the time limit, launch 4 stays at chance and is pruned.
    monkeypatch.setenv("PAI_SWEEP_FAULTS", "0:crash,1:hang,4:bad")
    sweep_dir = tmp_path / "sweep"
    # The random sampler with seed 5 draws max_dendrites 3 then 1 for launches 2 and 3: both grow dendrites.
    code = main([
        *SHRINK, f"sweep.dir={sweep_dir}", "sweep.n_trials=6", "sweep.in_flight=2", "sweep.trial_timeout=40",
        "sweep.sampler=random", "sweep.seed=5", "sweep.pruner=median", "sweep.pruner_startup=2", "sweep.pruner_warmup=1",
        "sweep.guided_share=0.5", "sweep.max_failures=5", "train.train_fn=driver_faults.train",
    ])
    out = capsys.readouterr().out
    assert code == 0, out
    study = load(sweep_dir)
    trials = study.get_trials()
    by_origin = {}
    for t in trials:
        by_origin.setdefault(origin(t).split(":")[0], []).append(t)
    assert sum(1 for t in trials if counts_toward_budget(t)) == 6

    failed = {t.number: t.user_attrs["reason"] for t in trials if t.state == TrialState.FAIL}
    assert "injected crash" in failed.get(0, ""), failed
    assert failed.get(1) == "timed out after 40 s", failed
    pruned = [t for t in trials if t.state == TrialState.PRUNED]
    assert pruned and all(t.user_attrs["reason"].startswith("pruned at epoch") for t in pruned)
    assert all(json.loads((Path(t.user_attrs["trial_dir"]) / "result.json").read_text())["status"] == "pruned" for t in pruned)

    complete = [t for t in trials if t.state == TrialState.COMPLETE and origin(t) != "derived"]
    assert complete
    for t in complete:
        a = t.user_attrs
        assert {"origin", "trial_dir", "status", "reason", "params", "dendrites", "best_val", "chosen_val", "chosen_params"} <= set(a)
        assert (Path(a["trial_dir"]) / "analysis.json").exists()
        assert t.values[0] == pytest.approx(a["objective_score"])

    assert by_origin.get("rule"), "no rule-enqueued trial"
    for t in by_origin["rule"]:
        assert t.user_attrs["parent"] in {c.number for c in complete}
    # every smaller architecture a grown run passed through is told as a derived value (its phase plateaued)
    # or kept on the parent as a lower bound (the switch cut it short while it was still rising): never lost
    grown = [t for t in complete if (t.user_attrs.get("dendrites") or 0) > 0]
    assert grown, "no trial grew dendrites"
    for t in grown:
        told = {d.params["dendrites.max_dendrites"] for d in by_origin.get("derived", []) if d.user_attrs["parent"] == t.number}
        bounds = {b["dendrites"] for b in t.user_attrs.get("lower_bounds", [])}
        assert told | bounds == set(range(t.user_attrs["dendrites"])) and not told & bounds, (t.number, told, bounds)
    for t in by_origin.get("derived", []):
        parent = study.trials[t.user_attrs["parent"]]
        assert t.params["dendrites.max_dendrites"] < parent.user_attrs["dendrites"]
        assert t.state == TrialState.COMPLETE and not (Path(parent.user_attrs["trial_dir"]).parent / str(t.number)).exists()

    # Two at a time: some pair of launched trials overlapped in time.
    spans = []
    for d in (sweep_dir / "trials").iterdir():
        spans.append((json.loads((d / "launch.json").read_text())["start_time"], (d / "result.json").stat().st_mtime))
    assert any(a[0] < b[1] and b[0] < a[1] for i, a in enumerate(spans) for b in spans[i + 1:])
    summary = json.loads((sweep_dir / "summary.json").read_text())
    assert summary["counted"] == 6 and "dendrites helped beyond the noise in" in summary["dendrites"]["text"]
    assert summary["dendrites"]["trials_compared"] + summary["dendrites"]["not_plateaued"] == len(grown)
    assert (sweep_dir / "config.yaml").exists() and "timed out after 40 s" in out and "best so far" in out
    assert json.loads((sweep_dir / "check" / "check.json").read_text())["ok"]  # sweep.check_first ran once
    # Every told trial (derived ones included) reached the tracker, between start and finish.
    assert tracker.calls[0] == ("start", "default") and tracker.calls[-1] == ("finish", 6)
    assert sorted(n for kind, n in tracker.calls if kind == "trial") == sorted(t.number for t in trials if t.state != TrialState.WAITING)


def _wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def test_sigkill_mid_sweep_then_the_same_command_finishes_it(tmp_path):
    sweep_dir = tmp_path / "sweep"
    cmd = [sys.executable, "-m", "pai_sweep", *SHRINK, f"sweep.dir={sweep_dir}", "sweep.n_trials=4", "sweep.in_flight=2",
           "tracking=off", "sweep.derived_trials=false", "sweep.rule_trials=false", "train.train_fn=driver_faults.train",
           "sweep.check_first=false"]
    # Launch 1 pauses before training, so it is still running when the driver dies and restarts.
    env = {**os.environ, "PYTHONPATH": str(TESTS), "PAI_SWEEP_FAULTS": "1:slow", "PAI_SWEEP_SLOW_S": "20"}
    log = open(tmp_path / "first.log", "w")
    first = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)

    def one_done_one_running() -> bool:
        if not (sweep_dir / "study.db").exists():
            return False
        try:
            trials = load(sweep_dir).get_trials(deepcopy=False)
        except Exception:  # noqa: BLE001 - the study is being created
            return False
        running = [t for t in trials if t.state == TrialState.RUNNING]
        return (any(t.state == TrialState.COMPLETE for t in trials)
                and any((Path(t.user_attrs["trial_dir"]) / "launch.json").exists() for t in running))

    _wait_for(one_done_one_running, 120, "a finished and a running trial")
    before = {t.number: t.values for t in load(sweep_dir).get_trials() if t.state == TrialState.COMPLETE}
    live = {t.number: json.loads((Path(t.user_attrs["trial_dir"]) / "launch.json").read_text())["pid"]
            for t in load(sweep_dir).get_trials() if t.state == TrialState.RUNNING and (Path(t.user_attrs["trial_dir"]) / "launch.json").exists()}
    first.send_signal(signal.SIGKILL)
    first.wait()
    assert any(_pid_alive(pid) for pid in live.values()), "every worker ended with the driver: nothing to re-attach"

    env["PAI_SWEEP_FAULTS"] = ""
    second = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=240, env=env)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    trials = load(sweep_dir).get_trials()
    assert sum(1 for t in trials if counts_toward_budget(t)) == 4
    for number, values in before.items():  # nothing finished was lost or changed
        assert trials[number].state == TrialState.COMPLETE and trials[number].values == values
    # the workers still running were followed to their end by the new driver: told once, never run again
    for number in live:
        assert trials[number].state == TrialState.COMPLETE, trials[number].user_attrs.get("reason")
        assert not any(t.user_attrs.get("rerun_of") == number for t in trials)
    stale = [t for t in trials if t.user_attrs.get("reason") == STALE_REASON]
    reruns = [t for t in trials if "rerun_of" in t.user_attrs]
    assert sorted(t.number for t in stale) == sorted(t.user_attrs["rerun_of"] for t in reruns)
    for t in reruns:
        assert t.params == trials[t.user_attrs["rerun_of"]].params and t.state == TrialState.COMPLETE
    # Each launched trial has its own folder with a result; no worker is left running.
    dirs = [t.user_attrs["trial_dir"] for t in trials]
    assert len(dirs) == len(set(dirs)) == len(list((sweep_dir / "trials").iterdir()))
    for d in dirs:
        assert (Path(d) / "result.json").exists()
        launch = Path(d) / "launch.json"
        if launch.exists():
            assert not _pid_alive(json.loads(launch.read_text())["pid"])
        else:  # killed between making its folder and starting it: it never ran; marked stale and run again
            assert any(t.user_attrs["trial_dir"] == d and t.user_attrs.get("reason") == STALE_REASON for t in trials), d
    assert "resuming" in second.stdout


def test_ctrl_c_then_the_same_command_continues_the_interrupted_trial(tmp_path):
    """Ctrl-C stops a trial mid-run; the same command again continues it from its last finished epoch in
    a new trial (its folder says where it started) and ends with the scores an uninterrupted run gets."""
    sweep_dir = tmp_path / "sweep"
    cmd = [sys.executable, "-m", "pai_sweep", *SHRINK, f"sweep.dir={sweep_dir}", "sweep.n_trials=1", "sweep.in_flight=1",
           "tracking=off", "sweep.derived_trials=false", "sweep.rule_trials=false", "train.train_fn=driver_faults.train",
           "sweep.check_first=false"]
    env = {**os.environ, "PYTHONPATH": str(TESTS), "PAI_SWEEP_FAULTS": "0:paced", "PAI_SWEEP_PACE_S": "0.4"}
    # Ctrl-C in a terminal: SIGINT acts (a CI job started in the background may have it ignored, and the child
    # would inherit that)
    first = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, text=True,
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    metrics = sweep_dir / "trials" / "0" / "metrics.jsonl"
    _wait_for(lambda: metrics.exists() and len(metrics.read_text().splitlines()) >= 4, 120, "four epochs of trial 0")
    first.send_signal(signal.SIGINT)
    out, _ = first.communicate(timeout=60)
    assert first.returncode == 130, out[-2000:]

    env["PAI_SWEEP_FAULTS"] = ""
    second = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=240, env=env)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    trials = load(sweep_dir).get_trials()
    rerun = next(t for t in trials if t.user_attrs.get("rerun_of") == 0)
    assert rerun.state == TrialState.COMPLETE and rerun.user_attrs["continues"] == 0
    folder = Path(rerun.user_attrs["trial_dir"])
    result = json.loads((folder / "result.json").read_text())
    assert result["extra"]["started_from"]["kind"] == "continue"
    assert result["extra"]["resumed_at_epoch"] >= 3
    # no resume point every epoch here (launcher.resume_requeued=false, the local default): Ctrl-C asked the
    # worker to finish its epoch and keep that one
    assert "stopped when asked, after epoch" in (sweep_dir / "trials" / "0" / "worker.log").read_text()

    # the same run config trained without interruption, in a folder of its own
    import yaml

    from pai_sweep.trial_files import read_metrics
    from pai_sweep.spawn import spawn_worker

    run = yaml.safe_load((folder / "run.yaml").read_text())
    run["train"]["start_from"] = None
    straight = tmp_path / "straight"
    straight.mkdir()
    (straight / "run.yaml").write_text(yaml.safe_dump(run))
    spawn_worker(straight, env={**env, "OMP_NUM_THREADS": "1"}).wait(timeout=240)
    assert [r.val for r in read_metrics(folder)] == [r.val for r in read_metrics(straight)]


def test_a_sweep_over_post_switch_knobs_branches_and_finds_the_same_values(tmp_path):
    """Trials that differ only in knobs acting after the first switch start from the first trial's state before
    its switch (sweep.branching=auto, the default) and get exactly the values the same sweep gets from scratch."""
    space = "sweep.space={dendrites.max_dendrites:{type:int,low:1,high:3},dendrites.max_dendrite_tries:{type:int,low:1,high:2}}"
    base = [sys.executable, "-m", "pai_sweep", *SHRINK[:-1], "sweep=empty", space, "dendrites.n_epochs_to_switch=2",
            "train.optimizer.args.lr=0.05",
            "sweep.name=default", "sweep.sampler=random", "sweep.n_trials=3", "tracking=off", "sweep.derived_trials=false",
            "sweep.rule_trials=false", "sweep.check_first=false"]
    values = {}
    for mode in ("auto", "off"):
        sweep_dir = tmp_path / mode
        # two in flight: trial 1 would start beside trial 0; with branching it waits for trial 0's branch point
        done = subprocess.run([*base, f"sweep.branching={mode}", f"sweep.dir={sweep_dir}", "sweep.in_flight=2"],
                              capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=240)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        trials = load(sweep_dir).get_trials()
        values[mode] = [(t.params, t.values) for t in trials]
        results = [json.loads((Path(t.user_attrs["trial_dir"]) / "result.json").read_text()) for t in trials]
        if mode == "auto":
            assert "branched_from" not in trials[0].user_attrs and (sweep_dir / "trials" / "0" / "branch" / "branch.json").exists()
            for t, result in zip(trials[1:], results[1:]):
                assert t.user_attrs["branched_from"] < t.number and t.user_attrs["branch_epoch"] > 0
                assert result["extra"]["started_from"]["kind"] == "branch"
                assert result["extra"]["resumed_at_epoch"] == t.user_attrs["branch_epoch"]
            # a trial allowed the dendrites an earlier one had added starts after that one's switch, not before it
            assert any(r["extra"]["started_from"]["dendrites"] >= 1 for r in results[1:])
            assert (done.stdout + done.stderr).count("the next trial waits for trial 0's state before its first switch") == 1
        else:
            assert not any("branched_from" in t.user_attrs for t in trials)
            assert "waits for" not in done.stdout + done.stderr
            assert not any((sweep_dir / "trials" / str(t.number) / "branch").exists() for t in trials)
    assert values["auto"] == values["off"]
