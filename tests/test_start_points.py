"""Where a sweep's trials start (sweep/start_points.py): the wait for a running trial's neuron phase, and the run.yaml
keys a continued trial gets. Folders are written the way the driver and the worker write them; no training here
(tests/test_branching.py and tests/test_driver_e2e.py train for real)."""

from __future__ import annotations

import json

import pytest
import yaml
from omegaconf import OmegaConf

from pai_sweep import branching
from pai_sweep.sweep.start_points import plan_start, prefix_in_training

BASE = {"model": {"name": "mlp"}, "dendrites": {"enabled": True, "max_dendrites": 3, "improvement_threshold": [0.001]},
        "train": {"max_epochs": 40}}
POST = ["dendrites.max_dendrites", "dendrites.candidate_weight_initialization_multiplier"]


def _cfg(branching_mode: str = "auto"):
    return OmegaConf.create({"sweep": {"branching": branching_mode}, "launcher": {"resume_requeued": False}})


def _trial(sweep_dir, number: int, run: dict | None = None, **train) -> tuple[int, object]:
    folder = sweep_dir / "trials" / str(number)
    folder.mkdir(parents=True)
    run = json.loads(json.dumps(run or BASE))
    run["train"].update({"branch_point": True, **train})
    (folder / "run.yaml").write_text(yaml.safe_dump(run))
    return number, folder


def _point(folder, name: str, run: dict, epoch: int, dendrites: int = 0, kind: str = "before_switch"):
    point = folder / name
    point.mkdir()
    (point / "branch.json").write_text(json.dumps({"epoch": epoch, "dendrites": dendrites, "switches": dendrites, "kind": kind,
                                                   "signature": branching.prefix_signature(run, dendrites)}))
    return point


def test_the_next_trial_waits_for_the_trial_training_the_shared_phase(tmp_path):
    running = [_trial(tmp_path, 0)]
    assert prefix_in_training(_cfg(), POST, BASE, tmp_path, running) == 0
    assert prefix_in_training(_cfg(), [], BASE, tmp_path, running) == 0  # no space: every trial is the same run
    # ... until it keeps its state before the first switch: the next trial starts from it
    _point(running[0][1], "branch", BASE, 12)
    assert prefix_in_training(_cfg(), POST, BASE, tmp_path, running) is None


@pytest.mark.parametrize("keys", [["dendrites.n_epochs_to_switch"], ["train.max_epochs"], ["dendrites.improvement_threshold"],
                                  [*POST, "model.width"]])
def test_no_wait_when_trials_may_differ_before_the_first_switch(tmp_path, keys):
    """A pre-switch key, or the epoch cap (a trial drawn with a cap before the switch would wait in vain)."""
    assert prefix_in_training(_cfg(), keys, BASE, tmp_path, [_trial(tmp_path, 0)]) is None


def test_no_wait_with_branching_off_or_without_dendrites(tmp_path):
    running = [_trial(tmp_path, 0)]
    assert prefix_in_training(_cfg("off"), POST, BASE, tmp_path, running) is None
    plain = {**BASE, "dendrites": {**BASE["dendrites"], "enabled": False}}
    assert prefix_in_training(_cfg(), POST, plain, tmp_path, running) is None


def test_only_a_trial_that_trains_this_phase_and_keeps_its_point_is_waited_for(tmp_path):
    other = {**BASE, "model": {"name": "other"}}
    donor = _trial(tmp_path, 9, other)  # another prefix's point: a start_from target below
    point = _point(donor[1], "branch", other, 5)
    running = [_trial(tmp_path, 0, other),  # another neuron phase (a rule trial with another switch timing, say)
               _trial(tmp_path, 1, branch_point=False),  # keeps no points (the baseline)
               _trial(tmp_path, 2, start_from=str(point))]  # started from a point: it does not train the phase
    assert prefix_in_training(_cfg(), POST, BASE, tmp_path, running) is None
    # a continued trial (its own earlier attempt's folder, no branch.json) trains its phase again and keeps the point
    running.append(_trial(tmp_path, 3, start_from=str(tmp_path / "trials" / "0")))
    assert prefix_in_training(_cfg(), POST, BASE, tmp_path, running) == 3


def test_a_point_that_does_not_serve_ends_the_wait_and_one_that_serves_prevents_it(tmp_path):
    running = [_trial(tmp_path, 0)]
    # the running trial kept only a state after its switch with another init multiplier: the next trial cannot use it,
    # and the phase is over, so waiting gains nothing
    other = {**BASE, "dendrites": {**BASE["dendrites"], "candidate_weight_initialization_multiplier": 0.5}}
    _point(running[0][1], "branch-after-switch-1", other, 13, dendrites=1, kind="after_switch")
    assert prefix_in_training(_cfg(), POST, BASE, tmp_path, running) is None
    # a finished trial's cap point serves every trial of this phase (with a later cap): no wait beside a new one
    fresh = tmp_path / "fresh"
    done = _trial(fresh, 0)
    _point(done[1], "branch-at-cap", BASE, 20, kind="at_cap")
    assert prefix_in_training(_cfg(), POST, BASE, fresh, [_trial(fresh, 1)]) is None


def test_a_continued_trial_keeps_points_for_later_trials(tmp_path):
    earlier = tmp_path / "trials" / "4"
    earlier.mkdir(parents=True)
    (earlier / "resume_state.pt").write_bytes(b"")
    run_yaml = OmegaConf.create(json.loads(json.dumps(BASE)))
    attrs = plan_start(_cfg(), tmp_path, run_yaml, baseline=False, earlier_attempt=earlier)
    assert attrs == {"continues": 4} and run_yaml.train.start_from == str(earlier) and run_yaml.train.branch_point is True
    baseline = OmegaConf.create(json.loads(json.dumps(BASE)))
    assert plan_start(_cfg(), tmp_path, baseline, baseline=True, earlier_attempt=None) == {}
    assert baseline.train.branch_point is False


@pytest.mark.parametrize("mode, later", [("auto", True), ("first", False)])
def test_branching_first_keeps_only_the_point_before_the_first_switch(tmp_path, mode, later):
    run_yaml = OmegaConf.create(json.loads(json.dumps(BASE)))
    plan_start(_cfg(mode), tmp_path, run_yaml, baseline=False, earlier_attempt=None)
    assert run_yaml.train.branch_point is True and run_yaml.train.later_points is later
