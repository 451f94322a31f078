"""Branching: a trial that shares a parent's neuron phase starts from the parent's state before its first
switch, and ends exactly where the same config trained from epoch 0 ends (real PerforatedAI, digits).

One parent keeps its branch point; for every knob the code calls post-switch, a child that differs from
the parent only in that knob is trained twice, from scratch and from the branch point, and the two must
agree: per-epoch scores, PerforatedAI's CSVs (Times aside) and the saved weights. The same holds for the
later points: after a switch (a child allowed more dendrites, or with another threshold for dendrites the
parent had not reached) and at the epoch cap (a child with a larger cap).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import signal
import threading
import time

import pytest
import torch
from safetensors.torch import load_file

from pai_sweep import branching
from pai_sweep.schema import DendritesConfig, TrainConfig
from pai_sweep.spawn import spawn_worker
from pai_sweep.trial_files import RESUME_FILE, RESUME_MODELS, read_metrics, read_result

BASE = {
    "model": {"name": "mlp", "hidden": [16]},
    "dendrites": {"preset": "linear_only", "module_names_to_perforate": ["Linear"], "output_dimensions": [-1, 0],
                  "n_epochs_to_switch": 2, "max_dendrites": 1, "improvement_threshold": [0.001, 0.0001, 0.0]},
    "train": {"max_epochs": 16, "test_saves": False, "optimizer": {"type": "Adam", "args": {"lr": 0.05}}},
}
# each differs from the parent in one knob the code says acts only at or after the first switch
POST_SWITCH_CHILDREN = {
    "max_dendrites": {"max_dendrites": 2},
    "candidate_weight_initialization_multiplier": {"max_dendrites": 2, "candidate_weight_initialization_multiplier": 0.2},
    "max_dendrite_tries": {"max_dendrites": 2, "max_dendrite_tries": 1},
    "retain_all_dendrites": {"max_dendrites": 2, "retain_all_dendrites": True},
    "find_best_lr": {"max_dendrites": 2, "find_best_lr": False},
    "improvement_threshold": {"max_dendrites": 2, "improvement_threshold": [0.001, 0.01]},
}
CAP = 9  # the capped parent's train.max_epochs: after its first switch, before its second
UNSWITCHED = {"n_epochs_to_switch": 20}  # no switch before the cap CAP
# a parent whose first dendrite set cannot help (entry 1 asks for a 1000 % gain): it is retried once, then the cap stops it
FAILING = {"max_dendrites": 2, "max_dendrite_tries": 2, "improvement_threshold": [0.001, 10.0]}
# children of the later points: (the point, the child's dendrites knobs, the from-scratch run it must equal)
LATER_CHILDREN = {
    "more_dendrites": ("parent", "branch-after-switch-1", {"max_dendrites": 2}, "scratch_max_dendrites"),
    "threshold_tail": ("parent", "branch-after-switch-1", {"max_dendrites": 3, "improvement_threshold": [0.001, 0.0001, 0.5]},
                       "scratch_threshold_tail"),
    "longer": ("capped", "branch-at-cap", {"max_dendrites": 2}, "scratch_max_dendrites"),
    # the same cap and a knob that never acted before it (no second switch by epoch CAP): the whole run is the parent's
    "same_cap": ("capped", "branch-at-cap", {"max_dendrites": 3, "train": {"max_epochs": CAP}}, "scratch_capped_more"),
    # a cap in the neuron phase: nothing after the first switch has acted, so the init multiplier may differ too
    "neuron_phase_cap": ("unswitched", "branch-at-cap", {**UNSWITCHED, "candidate_weight_initialization_multiplier": 0.2,
                                                         "train": {"max_epochs": CAP}}, "scratch_unswitched_child"),
    # no dendrite set has been judged right after the first switch: how often a failed one is retried has not acted
    "tries": ("parent", "branch-after-switch-1", POST_SWITCH_CHILDREN["max_dendrite_tries"], "scratch_max_dendrite_tries"),
    # ... also when the set then fails: a retry in one, the end in the other
    "failed_set_tries": ("failing", "branch-after-switch-1", {**FAILING, "max_dendrite_tries": 1}, "scratch_failing_tries"),
    # a point after a retry (2 switches, 1 dendrite)
    "after_a_retry": ("failing", "branch-after-switch-2", {**FAILING, "max_dendrites": 3}, "scratch_failing_more"),
}


def paced_fit(session, data):
    """The built-in loop with a pause before each epoch's report (train.train_fn): time to kill it mid-run."""
    from omegaconf import OmegaConf

    from pai_sweep.train_loop import classification_loop

    report = session.report

    def paced(*args, **kwargs):
        time.sleep(0.25)
        return report(*args, **kwargs)

    session.report = paced
    classification_loop(session, data, OmegaConf.load("run.yaml").train)


def _kill_after_switch(folder, proc) -> None:
    """SIGKILL the worker one epoch after its first restructure."""
    while proc.poll() is None:
        records = read_metrics(folder)
        switched = [r.epoch for r in records if r.restructured]
        if switched and records[-1].epoch > switched[0]:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            return
        time.sleep(0.02)


def _csvs(trial_dir) -> dict:
    """PerforatedAI's CSVs by name (its timestamp in snapshot names dropped), Times CSVs aside (wall-clock seconds)."""
    return {re.sub(r"_\d{2}\.\d{2}\.\d{4}\.\d{2}\.\d{2}\.\d{2}", "", p.name): p.read_text()
            for p in (trial_dir / "pai").glob("*.csv") if "Times" not in p.name}


def _run(dendrites: dict | None = None, **train) -> dict:
    # the failing family keeps PerforatedAI's own checkpoints (test_saves, the default): its learning-rate search's too
    saves = {"test_saves": True} if dendrites and dendrites.get("improvement_threshold") == FAILING["improvement_threshold"] else {}
    return {**BASE, "dendrites": {**BASE["dendrites"], **(dendrites or {})}, "train": {**BASE["train"], **saves, **train}}


@pytest.fixture(scope="module")
def branched(tmp_path_factory, run_trials):
    root = tmp_path_factory.mktemp("branching")
    # a parent killed after its switch (branch point kept, no resume point every epoch)
    killed = root / "killed"
    killed.mkdir()
    (killed / "run.yaml").write_text(json.dumps(_run(branch_point=True, train_fn="test_branching.paced_fit")))
    proc = spawn_worker(killed, env={"OMP_NUM_THREADS": "1", "PYTHONPATH": os.path.dirname(__file__)})
    watcher = threading.Thread(target=_kill_after_switch, args=(killed, proc))
    watcher.start()
    # a point that cannot be written (here a file in the way; a full disk alike) must not fail its trial
    (root / "blocked").mkdir()
    (root / "blocked" / ".branch-at-cap.tmp").write_text("in the way")
    first = {"parent": _run(branch_point=True), "first_only": _run(branch_point=True, later_points=False), "blocked": _run({"max_dendrites": 2}, branch_point=True, max_epochs=CAP), **{f"scratch_{k}": _run(v) for k, v in POST_SWITCH_CHILDREN.items()},
             "capped": _run({"max_dendrites": 2}, branch_point=True, max_epochs=CAP),
             "scratch_threshold_tail": _run(LATER_CHILDREN["threshold_tail"][2]),
             "failing": _run(FAILING, branch_point=True),
             "scratch_failing_tries": _run(LATER_CHILDREN["failed_set_tries"][2]),
             "scratch_failing_more": _run(LATER_CHILDREN["after_a_retry"][2]),
             "scratch_capped_more": _run({"max_dendrites": 3}, max_epochs=CAP),
             "unswitched": _run(UNSWITCHED, branch_point=True, max_epochs=CAP),
             "scratch_unswitched_child": _run({**UNSWITCHED, "candidate_weight_initialization_multiplier": 0.2}, max_epochs=CAP)}
    dirs = run_trials(root, first, timeout=400)
    watcher.join(timeout=300)
    assert proc.poll() == -signal.SIGKILL, "the paced parent finished before it could be killed"
    dirs["killed"] = killed
    point = str(dirs["parent"] / branching.BRANCH_DIR)
    second = {f"branched_{k}": _run(v, start_from=point) for k, v in POST_SWITCH_CHILDREN.items()}
    # a knob that acts before the switch (when it happens) must not branch: it trains from epoch 0 and says why
    second["refused"] = _run({"n_epochs_to_switch": 3}, start_from=point)
    # an earlier attempt of the failing run, stopped after its first switch (its resume point: that switch's state)
    attempt = root / "attempt"
    shutil.copytree(dirs["failing"] / "branch-after-switch-1" / "pai", attempt / "pai")
    shutil.copyfile(dirs["failing"] / "branch-after-switch-1" / "state.pt", attempt / RESUME_FILE)
    shutil.copyfile(dirs["failing"] / "run.yaml", attempt / "run.yaml")
    second["continued"] = _run(FAILING, branch_point=True, start_from=str(attempt))
    for name, (parent, folder, knobs, _) in LATER_CHILDREN.items():
        knobs = dict(knobs)
        train = knobs.pop("train", {})
        second[f"later_{name}"] = _run(knobs, start_from=str(dirs[parent] / folder), branch_point=True, **train)
    # after a switch the init multiplier has acted, and so has retain_all_dendrites (it resets the best score at the
    # switch): a child that changes either cannot use the point
    for knob in ("candidate_weight_initialization_multiplier", "retain_all_dendrites"):
        second[f"later_refused_{knob}"] = _run(POST_SWITCH_CHILDREN[knob], start_from=str(dirs["parent"] / "branch-after-switch-1"))
    return {**dirs, **run_trials(root, second, timeout=400)}


def test_parent_keeps_its_state_before_the_first_switch(branched):
    parent = branched["parent"]
    info = branching.branch_info(parent / branching.BRANCH_DIR)
    switch = next(r.epoch for r in read_metrics(parent) if r.restructured)
    assert info is not None and info["epoch"] == switch > 0, (info, switch)
    assert (parent / "branch" / "pai" / "branch.pt").exists() and (parent / "branch" / "state.pt").exists()
    assert "branch point saved: the state after epoch" in (parent / "worker.log").read_text()


def test_after_the_switch_no_resume_point_is_left_that_no_longer_fits(branched):
    """Without train.resume the neuron phase's last point goes at the switch: a re-run continuing from it would meet
    the best model written since (the branch point keeps its own copy)."""
    killed = branched["killed"]
    assert read_result(killed) is None and any(r.restructured for r in read_metrics(killed))
    assert branching.branch_info(killed / branching.BRANCH_DIR) is not None
    assert not (killed / RESUME_FILE).exists()
    assert not [name for name in RESUME_MODELS if (killed / "pai" / name).exists()]


@pytest.mark.parametrize("knob", sorted(POST_SWITCH_CHILDREN))
def test_branched_trial_equals_training_from_scratch(branched, knob):
    scratch, child = branched[f"scratch_{knob}"], branched[f"branched_{knob}"]
    result = read_result(child)
    assert result.status == "complete", result.reason
    started = result.extra["started_from"]
    switch = json.loads((branched["parent"] / "branch" / "branch.json").read_text())["epoch"]
    assert started["kind"] == "branch" and started["epoch"] == switch and started["parent"] == "parent"
    assert result.extra["resumed_at_epoch"] == switch
    fields = ("epoch", "val", "train", "test", "loss", "lr", "params", "dendrites", "restructured")
    ours = [tuple(getattr(r, f) for f in fields) for r in read_metrics(child)]
    theirs = [tuple(getattr(r, f) for f in fields) for r in read_metrics(scratch)]
    assert ours == theirs
    assert any(r.dendrites for r in read_metrics(child)), "no dendrite was added: the knob was never exercised"
    assert _csvs(child) == _csvs(scratch)
    a, b = load_file(scratch / "pai" / "best_model.pt"), load_file(child / "pai" / "best_model.pt")
    assert set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a if k != "tracker_string")


def test_parents_keep_a_point_after_each_switch_and_at_the_cap(branched):
    parent, capped = branched["parent"], branched["capped"]
    switch = next(r.epoch for r in read_metrics(parent) if r.restructured)
    after = branching.branch_info(parent / "branch-after-switch-1")
    assert after is not None and after["epoch"] == switch + 1 and after["dendrites"] == 1 and after["trial"] == "parent"
    assert (parent / "branch-after-switch-1" / "pai" / "branch.pt").exists()
    records = read_metrics(capped)
    assert len(records) == CAP and read_result(capped).reason == "epoch_cap"
    cap = branching.branch_info(capped / "branch-at-cap")
    assert cap is not None and cap["epoch"] == CAP and cap["dendrites"] == records[-1].dendrites >= 1
    assert [p.name for p in branching.point_dirs(capped)][0] == "branch"
    # without train.resume no resume point outlives the run's points
    assert not (parent / RESUME_FILE).exists() and not (capped / RESUME_FILE).exists()


def test_without_later_points_only_the_state_before_the_first_switch_is_kept(branched):
    """train.later_points=false (sweep.branching=first): one point per trial, for models whose copies are large."""
    first_only = branched["first_only"]
    assert [p.name for p in branching.point_dirs(first_only)] == ["branch"]
    assert [r.val for r in read_metrics(first_only)] == [r.val for r in read_metrics(branched["parent"])]


def test_a_point_that_cannot_be_written_does_not_fail_its_trial(branched):
    blocked = branched["blocked"]
    result = read_result(blocked)
    assert result.status == "complete" and result.epochs == CAP, result.reason
    assert not (blocked / "branch-at-cap").exists() and branching.branch_info(blocked / "branch-after-switch-1") is not None
    assert "no start point branch-at-cap: " in (blocked / "worker.log").read_text()
    assert [r.val for r in read_metrics(blocked)] == [r.val for r in read_metrics(branched["capped"])]


@pytest.mark.parametrize("name", sorted(LATER_CHILDREN))
def test_a_trial_from_a_later_point_equals_training_from_scratch(branched, name):
    parent, folder, _, scratch_name = LATER_CHILDREN[name]
    child, scratch = branched[f"later_{name}"], branched[scratch_name]
    result = read_result(child)
    assert result.status == "complete", result.reason
    point = branching.branch_info(branched[parent] / folder)
    started = result.extra["started_from"]
    assert started["kind"] == "branch" and started["epoch"] == point["epoch"] == result.extra["resumed_at_epoch"]
    assert started["dendrites"] == point["dendrites"] >= (0 if name == "neuron_phase_cap" else 1)
    fields = ("epoch", "val", "train", "test", "loss", "lr", "params", "dendrites", "restructured")
    ours = [tuple(getattr(r, f) for f in fields) for r in read_metrics(child)]
    theirs = [tuple(getattr(r, f) for f in fields) for r in read_metrics(scratch)]
    assert ours == theirs and len(ours) >= point["epoch"]
    if len(ours) == point["epoch"]:  # the whole run was the parent's: nothing trained, the cap ended it
        assert name in ("same_cap", "neuron_phase_cap") and result.reason == "epoch_cap"
        assert "nothing left to train" in (child / "worker.log").read_text()
    assert _csvs(child) == _csvs(scratch)
    a, b = load_file(scratch / "pai" / "best_model.pt"), load_file(child / "pai" / "best_model.pt")
    assert set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a if k != "tracker_string")


@pytest.mark.parametrize("knob", ["candidate_weight_initialization_multiplier", "retain_all_dendrites"])
def test_a_later_point_refuses_a_knob_that_acted_before_it(branched, knob):
    result = read_result(branched[f"later_refused_{knob}"])
    assert result.status == "complete" and "started_from" not in result.extra
    assert "trains differently up to its 1 dendrite(s)" in result.extra["start_refused"]
    assert read_metrics(branched[f"later_refused_{knob}"])[0].epoch == 0


def test_a_run_continued_after_its_first_switch_keeps_no_point_before_it(branched):
    """Its own earlier attempt had switched: the state before the first switch is behind it, so a restructure ahead
    (here the retry) must not be taken for the first switch; its later points are kept, its scores are the run's."""
    continued, failing = branched["continued"], branched["failing"]
    result = read_result(continued)
    assert result.status == "complete" and result.extra["started_from"]["kind"] == "continue"
    assert not (continued / "branch").exists()
    assert branching.branch_info(continued / "branch-after-switch-2")["switches"] == 2
    assert [r.val for r in read_metrics(continued)] == [r.val for r in read_metrics(failing)]


def test_a_retry_is_a_switch_of_its_own(branched):
    failing = branched["failing"]
    switched = [(r.epoch, r.dendrites) for r in read_metrics(failing) if r.restructured]
    assert [d for _, d in switched] == [1, 1], switched  # the set did not help: the same dendrite count again
    info = branching.branch_info(failing / "branch-after-switch-2")
    assert info["switches"] == 2 and info["dendrites"] == 1 and info["epoch"] == switched[1][0] + 1


def test_a_pre_switch_change_trains_from_epoch_zero_and_says_why(branched):
    result = read_result(branched["refused"])
    assert result.status == "complete" and "started_from" not in result.extra
    assert "trains differently before its first switch" in result.extra["start_refused"]
    assert read_metrics(branched["refused"])[0].epoch == 0
    assert "training from epoch 0" in (branched["refused"] / "worker.log").read_text()


def test_prefix_signature_ignores_exactly_the_post_switch_knobs():
    base = {"dendrites": dataclasses.asdict(DendritesConfig()), "train": dataclasses.asdict(TrainConfig()), "model": {}}
    sig = branching.prefix_signature(base)
    for field in dataclasses.fields(DendritesConfig):
        if field.name in ("enabled", "improvement_threshold"):
            continue
        changed = json.loads(json.dumps(base))
        value = changed["dendrites"][field.name]
        changed["dendrites"][field.name] = ("x" if isinstance(value, str) else [9] if isinstance(value, list)
                                            else {"k": 1} if isinstance(value, dict) else not value if isinstance(value, bool)
                                            else value + 1)
        same = branching.prefix_signature(changed) == sig
        assert same == (field.name in branching.POST_SWITCH_DENDRITE_KEYS), field.name
    # the per-dendrite threshold schedule: its first entry judges the neuron phase, the rest come after
    head = json.loads(json.dumps(base))
    head["dendrites"]["improvement_threshold"] = [0.5, 0.0001, 0.0]
    tail = json.loads(json.dumps(base))
    tail["dendrites"]["improvement_threshold"] = [0.001, 0.5]
    assert branching.prefix_signature(head) != sig and branching.prefix_signature(tail) == sig
    scalar = json.loads(json.dumps(base))
    scalar["dendrites"]["improvement_threshold"] = 0.001
    assert branching.prefix_signature(scalar) == sig
    # train: bookkeeping and the epoch cap do not change the prefix; the optimizer does
    for key, value in (("resume", True), ("graphs", "every_epoch"), ("branch_point", True), ("start_from", "x"), ("max_epochs", 99)):
        other = json.loads(json.dumps(base))
        other["train"][key] = value
        assert branching.prefix_signature(other) == sig, key
    lr = json.loads(json.dumps(base))
    lr["train"]["optimizer"]["args"]["lr"] = 0.5
    assert branching.prefix_signature(lr) != sig
    off = json.loads(json.dumps(base))
    off["dendrites"]["enabled"] = False
    assert branching.prefix_signature(off) is None


def test_after_a_switch_only_the_dendrite_cap_the_epoch_cap_and_later_thresholds_leave_the_signature():
    base = {"dendrites": dataclasses.asdict(DendritesConfig()), "train": dataclasses.asdict(TrainConfig()), "model": {}}
    for key in branching.POST_SWITCH_DENDRITE_KEYS - {"max_dendrites"}:
        changed = json.loads(json.dumps(base))
        value = changed["dendrites"][key]
        changed["dendrites"][key] = not value if isinstance(value, bool) else value + 1
        assert branching.prefix_signature(changed) == branching.prefix_signature(base), key  # not yet acted
        # a set is first judged at the second switch: the retry knobs act from there, the others from the first
        judged = key in branching.RETRY_DENDRITE_KEYS
        assert (branching.prefix_signature(changed, 1) == branching.prefix_signature(base, 1)) == judged, key
        assert branching.prefix_signature(changed, 1, switches=2) != branching.prefix_signature(base, 1, switches=2), key
        assert branching.prefix_signature(changed, 2) != branching.prefix_signature(base, 2), key
    more = json.loads(json.dumps(base))
    more["dendrites"]["max_dendrites"] += 5
    more["train"]["max_epochs"] += 50
    assert branching.prefix_signature(more, 2) == branching.prefix_signature(base, 2)
    schedule = json.loads(json.dumps(base))
    schedule["dendrites"]["improvement_threshold"] = [0.001, 0.0001, 0.5]
    base["dendrites"]["improvement_threshold"] = [0.001, 0.0001, 0.0]
    assert branching.prefix_signature(schedule, 1) == branching.prefix_signature(base, 1)  # entry 2: two dendrites on
    assert branching.prefix_signature(schedule, 2) != branching.prefix_signature(base, 2)
    # the last entry repeats: [a, b] and [a, b, b] are the same schedule at any depth
    short, long = json.loads(json.dumps(base)), json.loads(json.dumps(base))
    short["dendrites"]["improvement_threshold"], long["dendrites"]["improvement_threshold"] = [0.01, 0.1], [0.01, 0.1, 0.1, 0.1]
    assert all(branching.prefix_signature(short, k) == branching.prefix_signature(long, k) for k in range(5))


def _point(trial_dir, name, epoch, run, dendrites=0, kind="after_switch"):
    point = trial_dir / name
    point.mkdir(parents=True)
    (point / "branch.json").write_text(json.dumps(
        {"epoch": epoch, "dendrites": dendrites, "kind": kind, "signature": branching.prefix_signature(run, dendrites)}))
    return point


def test_the_deepest_point_that_fits_is_chosen(tmp_path):
    run = {"dendrites": {"enabled": True, "max_dendrites": 2, "improvement_threshold": [0.1]}, "train": {"max_epochs": 40}}
    first = _point(tmp_path / "0", "branch", 10, run)
    after = _point(tmp_path / "0", "branch-after-switch-1", 21, run, dendrites=1)
    _point(tmp_path / "1", "branch-after-switch-3", 35, run, dendrites=3)  # more dendrites than max_dendrites=2 allows
    other = {**run, "dendrites": {**run["dendrites"], "candidate_weight_initialization_multiplier": 0.5}}
    _point(tmp_path / "2", "branch-after-switch-2", 30, other, dendrites=2)  # another init multiplier
    trials = [(0, tmp_path / "0"), (1, tmp_path / "1"), (2, tmp_path / "2")]
    assert branching.find_parent(trials, run) == (0, after, 21)
    # a state at epoch 40 leaves nothing under the cap of 40, unless the cap ended that run there: then it is the whole run
    late = {"epoch": 40, "dendrites": 1, "kind": "after_switch", "signature": branching.prefix_signature(run, 1)}
    assert "leaves none to train" in branching.fits(late, run) and not branching.fits({**late, "kind": "at_cap"}, run)
    assert "leaves none to train" in branching.fits({**late, "kind": "at_cap"}, {**run, "train": {"max_epochs": 39}})
    # a user's training function is always called: what it does after its loop would be skipped
    own_fn = {**run, "train": {"max_epochs": 40, "train_fn": "m.f"}}
    at_cap_fn = {**late, "kind": "at_cap", "signature": branching.prefix_signature(own_fn, 1)}
    assert "leaves none to train" in branching.fits(at_cap_fn, own_fn)
    assert not branching.fits(at_cap_fn, {**own_fn, "train": {**own_fn["train"], "max_epochs": 41}})
    cap = _point(tmp_path / "1", "branch-at-cap", 40, run, dendrites=2, kind="at_cap")
    assert branching.find_parent(trials, run) == (1, cap, 40)
    # the init multiplier has not acted before the first switch: that point still serves
    assert branching.find_parent(trials, other) == (2, tmp_path / "2" / "branch-after-switch-2", 30)
    assert branching.find_parent(trials, {"dendrites": {**run["dendrites"], "max_dendrites": 3}, "train": {"max_epochs": 39}})[2] == 35
    assert branching.find_parent(trials, {**run, "train": {"max_epochs": 41}})[2] == 40
    assert branching.find_parent(trials, {**run, "train": {"max_epochs": 15}}) == (0, first, 10)
    assert "allows fewer" in branching.fits(json.loads((tmp_path / "1" / "branch-after-switch-3" / "branch.json").read_text()), run)


def test_seed_refuses_what_it_cannot_use(tmp_path):
    run = {"dendrites": {"enabled": True}, "train": {}}
    info, why = branching.seed_trial(tmp_path / "nowhere", tmp_path / "t", run, lambda p: run)
    assert info is None and "neither a branch point" in why
    point = tmp_path / "p" / "branch"
    point.mkdir(parents=True)
    (point / "branch.json").write_text(json.dumps({"epoch": 3, "signature": branching.prefix_signature(run)}))
    info, why = branching.seed_trial(point, tmp_path / "t", run, lambda p: run)
    assert info is None and "holds no saved state" in why
    longer = {**run, "train": {"max_epochs": 10}}
    assert branching.find_parent([(0, tmp_path / "p")], longer) == (0, point, 3)
    assert branching.find_parent([(0, tmp_path / "p")], {**run, "train": {"max_epochs": 3}}) is None
    assert branching.find_parent([(0, tmp_path / "p")], {**longer, "model": {"name": "other"}}) is None
    # a point found once is not read again (branch.json never changes once written), and forgotten once it is gone
    known: dict = {}
    assert branching.find_parent([(0, tmp_path / "p")], longer, known) == (0, point, 3)
    (point / "branch.json").write_text("not read again")
    assert branching.find_parent([(0, tmp_path / "p")], longer, known) == (0, point, 3)
    (point / "branch.json").unlink()
    assert branching.find_parent([(0, tmp_path / "p")], longer, known) is None and not known


def test_a_point_leaves_room_on_its_disk(tmp_path, monkeypatch):
    """write_point copies a resume point into place, and skips it (one log line, False) when what stays free would
    drop under the reserve: a point only saves later trials work, a result or the study needs the room."""
    import collections

    monkeypatch.chdir(tmp_path)
    (tmp_path / "pai").mkdir()
    (tmp_path / "pai" / "resume0.pt").write_bytes(b"m" * 1000)
    (tmp_path / "pai" / "best_model.pt").write_bytes(b"b" * 1000)
    torch.save({"tracker": {"name": "resume0"}, "epoch": 3}, tmp_path / "resume_state.pt")
    logged: list[str] = []
    info = {"epoch": 3, "signature": "s"}
    checkpoints = (tmp_path / "pai" / "best_model.pt",)
    assert branching.write_point(tmp_path / "branch", tmp_path / "resume_state.pt", info, checkpoints, logged.append)
    assert branching.branch_info(tmp_path / "branch") == info and (tmp_path / "branch" / "pai" / "branch.pt").read_bytes() == b"m" * 1000
    assert torch.load(tmp_path / "branch" / "state.pt", weights_only=False)["tracker"]["name"] == "branch"
    usage = collections.namedtuple("usage", "total used free")
    monkeypatch.setattr(branching.shutil, "disk_usage", lambda path: usage(10 * 2**30, 0, branching.POINT_DISK_RESERVE + 2000))
    assert not branching.write_point(tmp_path / "branch-at-cap", tmp_path / "resume_state.pt", info, checkpoints, logged.append)
    assert not (tmp_path / "branch-at-cap").exists() and not list(tmp_path.glob(".branch*"))
    assert len(logged) == 1 and "no start point branch-at-cap: " in logged[0] and "sweep.branching=first" in logged[0]
