"""The rule policy: rule trials wait for the sampler's start-up, skip advice that cannot act, and earn their share."""

from __future__ import annotations

import datetime as dt
import random
from types import SimpleNamespace as NS

import optuna
import pandas as pd
import pytest
from optuna.distributions import FloatDistribution
from optuna.study import StudyDirection
from optuna.trial import TrialState

from pai_sweep.analysis import RuleContext
from pai_sweep.sweep import rule_policy

MAX, MIN = StudyDirection.MAXIMIZE, StudyDirection.MINIMIZE
T0 = dt.datetime(2026, 1, 1)


def trial(number: int, origin: str, values=None, state=TrialState.COMPLETE, at: int | None = None, feasible: bool = True):
    t = optuna.trial.create_trial(
        state=state, values=values, params={"x": 0.5}, distributions={"x": FloatDistribution(0, 1)},
        user_attrs={"origin": origin}, system_attrs={"constraints": [-1.0 if feasible else 1.0]},
    )
    t.number = number
    t.datetime_start = T0
    t.datetime_complete = T0 + dt.timedelta(seconds=at if at is not None else number)
    return t


def test_rule_trials_wait_for_the_samplers_startup():
    done = [trial(i, "sampler", [80.0 + i]) for i in range(3)]
    running = trial(3, "sampler", state=TrialState.RUNNING)
    assert not rule_policy.started(done + [running], startup=4)
    assert rule_policy.started(done + [trial(3, "sampler", state=TrialState.FAIL)], startup=4)  # failed trials are spent too
    assert not rule_policy.started(done + [trial(3, "derived", [90.0]), trial(4, "rule:x", [90.0])], startup=4)


def test_arms_count_trials_that_moved_the_front():
    trials = [
        trial(0, "sampler", [80.0, 1000]),
        trial(1, "sampler", [85.0, 900]),  # dominates 0: a win
        trial(2, "rule:dendrites.all_helped", [84.0, 950]),  # dominated by 1: a loss
        trial(3, "derived", [86.0, 800]),  # free: on the front, but no arm's trial
        trial(4, "rule:dendrites.all_helped", [90.0, 2000]),  # new best score: a win
        trial(5, "sampler", [86.0, 800]),  # equals derived 3: moves nothing, a loss
        trial(6, "rule:switch.before_plateau", state=TrialState.FAIL),  # a failed trial is a loss
        trial(7, "sampler", [99.0, 10], feasible=False),  # infeasible: a loss
    ]
    arms = rule_policy.arms(trials, [MAX, MIN])
    assert (arms["sampler"].wins, arms["sampler"].losses) == (2, 2)
    assert (arms["dendrites.all_helped"].wins, arms["dendrites.all_helped"].losses) == (1, 1)
    assert (arms["switch.before_plateau"].wins, arms["switch.before_plateau"].losses) == (0, 1)


def test_the_samplers_startup_trials_do_not_count_against_the_rules():
    trials = [trial(i, "sampler", [70.0 + i]) for i in range(4)]  # start-up: each moves the front
    trials += [trial(4, "sampler", [60.0]), trial(5, "rule:x", [60.0])]
    assert str(rule_policy.arms(trials, [MAX])["sampler"]) == "4/5"
    assert str(rule_policy.arms(trials, [MAX], since=4)["sampler"]) == "0/1"
    assert str(rule_policy.arms(trials, [MAX], since=4)["x"]) == "0/1"


def test_a_losing_rule_gets_its_share_cut():
    trials = [trial(i, "sampler", [70.0 + i]) for i in range(8)]  # the sampler keeps improving: 8 wins
    trials += [trial(100 + i, "rule:stability.smooth_after_switch", [10.0], at=200 + i) for i in range(8)]  # 8 losses
    rng = random.Random(0)
    kept = sum(bool(rule_policy.select([("stability.smooth_after_switch", None)], trials, [MAX], rng)[0]) for _ in range(200))
    fresh = sum(bool(rule_policy.select([("a.new_rule", None)], trials, [MAX], rng)[0]) for _ in range(200))
    assert kept < 10  # Beta(1, 9) against Beta(9, 1): almost never
    assert 10 < fresh < 60  # a rule with no record gets an occasional try against a strong sampler
    _, cut = rule_policy.select([("stability.smooth_after_switch", None)], trials, [MAX], random.Random(1))
    assert cut and "0/8" in cut[0] and "8/8" in cut[0]


def history(switched: bool, dendrites: int, accepted=(0,), phase=None):
    table = pd.DataFrame({"dendrites": list(accepted), "val": [80.0] * len(accepted), "params": [1000] * len(accepted)})
    metrics = pd.DataFrame({"val": phase or [80.0] * 8, "dendrites": [0] * len(phase or [80.0] * 8)})
    return NS(switches=pd.DataFrame({"epoch": [5]} if switched else {"epoch": []}), rejected=pd.DataFrame(),
              dendrites=dendrites, accepted=table, metrics=metrics, scores=pd.DataFrame())


@pytest.mark.parametrize("changed,parent,switched,grown,acts", [
    ({"dendrites.candidate_weight_initialization_multiplier": 0.01}, {}, False, 0, False),
    ({"dendrites.candidate_weight_initialization_multiplier": 0.01}, {}, True, 1, True),
    ({"dendrites.n_epochs_to_switch": 8}, {"dendrites.n_epochs_to_switch": 4}, False, 0, False),
    ({"dendrites.n_epochs_to_switch": 2}, {"dendrites.n_epochs_to_switch": 4}, False, 0, True),
    ({"dendrites.max_dendrites": 3}, {"dendrites.max_dendrites": 2}, True, 1, False),  # stopped below its cap
    ({"dendrites.max_dendrites": 3}, {"dendrites.max_dendrites": 2}, True, 2, True),  # reached the cap
    ({"dendrites.max_dendrites": 0}, {"dendrites.max_dendrites": 2}, True, 2, False),  # 0 measured at plateau
    ({"train.optimizer.args.lr": 0.01}, {}, False, 0, True),
    ({"dendrites.improvement_threshold": [0.0], "dendrites.n_epochs_to_switch": 2}, {"dendrites.n_epochs_to_switch": 4}, False, 0, True),
    # 3.2.9 reads the threshold to decide whether an epoch improved: it moves the first switch, so it always acts
    ({"dendrites.improvement_threshold": [0.01]}, {}, False, 0, True),
    ({"dendrites.max_dendrite_tries": 3, "dendrites.candidate_weight_initialization_multiplier": 0.1}, {}, False, 0, False),
    # the learning-rate search runs only after a switch (branching.py's post-switch knobs, tested per knob)
    ({"dendrites.find_best_lr": False}, {}, False, 0, False),
    ({"dendrites.find_best_lr": False}, {}, True, 1, True),
])
def test_advice_whose_knobs_cannot_act_is_skipped(changed, parent, switched, grown, acts):
    h = history(switched, grown, accepted=tuple(range(grown + 1)))
    why = rule_policy.cannot_act(changed, parent, h, RuleContext(val_samples=1000, score_kind="accuracy_percent"))
    assert (why is None) is acts, why
    if not acts:
        assert why and "\n" not in why


def test_a_smaller_cap_acts_when_that_architecture_was_cut_short():
    rising = [50.0, 55.0, 60.0, 65.0, 70.0, 75.0, 80.0, 85.0]
    h = history(True, 2, accepted=(0, 1, 2), phase=rising)
    ctx = RuleContext(val_samples=1000, score_kind="accuracy_percent")
    assert rule_policy.cannot_act({"dendrites.max_dendrites": 0}, {"dendrites.max_dendrites": 2}, h, ctx) is None
