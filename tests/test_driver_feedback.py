"""Feedback on hand-built findings and histories: rule trials inside the space, deduplicated; derived trials."""

from __future__ import annotations

from types import SimpleNamespace as NS

import optuna
import pandas as pd
import pytest

from pai_sweep.compose import compose
from pai_sweep.search_space import parse_space
from pai_sweep.sweep.feedback import derived_trials, enqueue_rule_trials, recommended_params
from pai_sweep.trial_files import TrialResult

SPACE = {
    "dendrites.max_dendrites": {"type": "int", "low": 0, "high": 3},
    "dendrites.n_epochs_to_switch": {"type": "int", "low": 1, "high": 8},
    "dendrites.improvement_threshold": {"type": "categorical", "choices": [[0.001, 0.0001, 0.0], 0.0]},
}
PARENT = {"dendrites.max_dendrites": 2, "dendrites.n_epochs_to_switch": 4, "dendrites.improvement_threshold": [0.001, 0.0001, 0.0]}


@pytest.fixture(scope="module")
def cfg():
    return compose([])


@pytest.fixture(scope="module")
def space(cfg):
    return parse_space(SPACE, cfg)


def finding(rule_id, rec):
    return NS(rule_id=rule_id, recommendation=rec)


def test_recommendations_become_params_inside_the_space(cfg, space):
    got = recommended_params(finding("switch.before_plateau", {"dendrites.n_epochs_to_switch": "x0.5", "train.max_epochs": 99}), PARENT, space, cfg)
    assert got == {**PARENT, "dendrites.n_epochs_to_switch": 2}  # train.max_epochs is not searched: skipped
    assert recommended_params(finding("r", {"max_dendrites": "+5"}), PARENT, space, cfg)["dendrites.max_dendrites"] == 3
    assert recommended_params(finding("r", {"dendrites.improvement_threshold": 0.0}), PARENT, space, cfg)["dendrites.improvement_threshold"] == 0.0
    assert recommended_params(finding("r", {"dendrites.max_dendrites": 2}), PARENT, space, cfg) is None  # no change
    assert recommended_params(finding("r", {"dendrites.switch_mode": "fixed"}), PARENT, space, cfg) is None  # not searched


def test_rule_trials_are_tagged_deduplicated_and_capped(cfg, space):
    study = optuna.create_study(direction="maximize")
    study.enqueue_trial(space.encode({**PARENT, "dendrites.n_epochs_to_switch": 2}))  # already queued
    findings = [
        finding("switch.before_plateau", {"dendrites.n_epochs_to_switch": "x0.5"}),
        finding("dendrites.diminishing_returns", {"dendrites.max_dendrites": 1}),
        finding("switch.too_often", {"dendrites.n_epochs_to_switch": "+2"}),
    ]
    added = enqueue_rule_trials(study, findings, 7, PARENT, space, cfg, room=1)
    assert added == [("dendrites.diminishing_returns", {**PARENT, "dendrites.max_dendrites": 1})]
    waiting = study.get_trials(states=(optuna.trial.TrialState.WAITING,))
    assert waiting[-1].user_attrs["origin"] == "rule:dendrites.diminishing_returns" and waiting[-1].user_attrs["parent"] == 7
    # The queued trial is asked with the list schedule stored as JSON.
    assert study.get_trials()[-1].system_attrs["fixed_params"]["dendrites.improvement_threshold"] == "[0.001, 0.0001, 0.0]"
    assert enqueue_rule_trials(study, findings[1:2], 7, PARENT, space, cfg, room=5) == []  # now a duplicate


def test_each_smaller_accepted_architecture_becomes_a_derived_trial(space):
    table = pd.DataFrame({
        "dendrites": [0, 1, 2, 3],
        "params": [1000, 2000, 3000, 4000],
        "val": [85.0, 88.0, 89.0, 86.0],
        "Test": [84.0, 87.0, 88.5, 85.0],
        "accepted": [True, True, True, False],  # the 3rd dendrite was rejected: the run reached 2
    })
    # every phase ran 8 epochs and levelled off: each smaller architecture is a finished value, not a lower bound
    flat = [80.0, 84.0, 85.0, 85.2, 85.1, 85.2, 85.3, 85.2]
    metrics = pd.DataFrame({"val": flat * 3, "dendrites": [0] * 8 + [1] * 8 + [2] * 8})
    history = NS(best_arch=table, metrics=metrics, scores=pd.DataFrame(), extra_name=lambda kind: "Test" if kind == "test" else None)
    result = TrialResult(status="complete", reason="pai_complete", best_val=89.0, params=3000, dendrites=2)
    objective = NS(name="efficiency", metric="test", use_analysis=True, penalties={}, tolerance=1.0, direction=None)
    out = derived_trials(history, None, 5, PARENT, space, result, objective, None)
    assert [t.params["dendrites.max_dendrites"] for t in out] == [0, 1]
    assert [t.values for t in out] == [[84.0, 1000.0], [87.0, 2000.0]]
    assert all(t.user_attrs["origin"] == "derived" and t.user_attrs["parent"] == 5 for t in out)
    study = optuna.create_study(directions=["maximize", "minimize"])
    for t in out:
        study.add_trial(t)
    assert study.trials[0].params["dendrites.improvement_threshold"] == "[0.001, 0.0001, 0.0]"
    # A count outside the searched range is not a point of this space.
    narrow = parse_space({**SPACE, "dendrites.max_dendrites": {"type": "int", "low": 1, "high": 3}}, None)
    assert [t.params["dendrites.max_dendrites"] for t in derived_trials(history, None, 5, PARENT, narrow, result, objective, None)] == [1]
