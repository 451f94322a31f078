"""Search space: parsing, validation, suggestion through FixedTrial, encoding of list choices."""

from __future__ import annotations

import optuna
import pytest

from pai_sweep.compose import compose
from pai_sweep.errors import SweepError
from pai_sweep.search_space import MISSING, apply_params, parse_space, suggest, to_overrides

SPACE = {
    "dendrites.max_dendrites": {"type": "int", "low": 0, "high": 4},
    "dendrites.improvement_threshold": {"type": "categorical", "choices": [[0.001, 0.0001, 0.0], [0.01, 0.001], 0.0]},
    "dendrites.candidate_weight_initialization_multiplier": {"type": "float", "low": 0.001, "high": 0.1, "log": True},
    "dendrites.switch_mode": {"type": "categorical", "choices": ["history", "fixed"]},
    "dendrites.n_epochs_to_switch": {"type": "int", "low": 1, "high": 5, "when": {"dendrites.switch_mode": "history"}},
    "downsize.width_mult": {"type": "float", "low": 0.25, "high": 1.0, "step": 0.25},
    "train.optimizer.args.lr": {"type": "float", "low": 1e-4, "high": 1e-1, "log": True},
}


@pytest.fixture(scope="module")
def cfg():
    return compose([])


def test_suggest_with_fixed_trial_decodes_schedules_and_skips_inactive_keys(cfg):
    space = parse_space(SPACE, cfg)
    fixed = {
        "dendrites.max_dendrites": 2,
        "dendrites.improvement_threshold": "[0.01, 0.001]",
        "dendrites.candidate_weight_initialization_multiplier": 0.01,
        "dendrites.switch_mode": "fixed",
        "downsize.width_mult": 0.5,
        "train.optimizer.args.lr": 0.01,
    }
    params = suggest(optuna.trial.FixedTrial(fixed), space)
    assert params["dendrites.improvement_threshold"] == [0.01, 0.001]
    assert "dendrites.n_epochs_to_switch" not in params  # its condition (history) is off
    run = apply_params(cfg, params)
    assert list(run.dendrites.improvement_threshold) == [0.01, 0.001]
    assert run.downsize.width_mult == 0.5 and run.train.optimizer.args.lr == 0.01
    assert to_overrides(params)["dendrites"]["max_dendrites"] == 2
    # Stored form is the JSON string Optuna accepts; decode gives the list back.
    assert space.encode(params)["dendrites.improvement_threshold"] == "[0.01, 0.001]"
    assert space.contains(params)


def test_real_study_samples_inside_the_space(cfg):
    space = parse_space(SPACE, cfg)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    for _ in range(10):
        trial = study.ask()
        params = suggest(trial, space)
        assert 0 <= params["dendrites.max_dendrites"] <= 4
        assert isinstance(params["dendrites.improvement_threshold"], (list, float))
        assert ("dendrites.n_epochs_to_switch" in params) == (params["dendrites.switch_mode"] == "history")
        study.tell(trial, 1.0)


def test_fit_clips_and_rounds_into_the_distribution(cfg):
    space = parse_space(SPACE, cfg)
    assert space.fit("dendrites.max_dendrites", 9) == 4
    assert space.fit("dendrites.max_dendrites", 1.6) == 2
    assert space.fit("downsize.width_mult", 0.6) == 0.5
    assert space.fit("dendrites.candidate_weight_initialization_multiplier", 5) == 0.1
    assert space.fit("dendrites.improvement_threshold", [0.01, 0.001]) == [0.01, 0.001]
    assert space.fit("dendrites.improvement_threshold", [0.5]) is MISSING
    assert space.fit("dendrites.switch_mode", "no_switch") is MISSING


@pytest.mark.parametrize(
    "space, words",
    [
        ({}, "sweep.space is empty"),
        ({"dendrites.max_dendritez": {"type": "int", "low": 1, "high": 3}}, "not a key of the composed config"),
        ({"dendrites.max_dendrites": {"type": "int", "low": 4, "high": 1}}, "low=4 is above high=1"),
        ({"dendrites.switch_mode": {"type": "categorical", "choices": []}}, "non-empty 'choices'"),
        ({"dendrites.max_dendrites": {"type": "normal", "low": 1, "high": 3}}, "valid types"),
        ({"train.optimizer.args.lr": {"type": "float", "low": 0, "high": 1, "log": True}}, "needs low > 0"),
        ({"dendrites.max_dendrites": {"type": "int", "low": 1.5, "high": 3}}, "whole numbers"),
        ({"dendrites.max_dendrites": {"type": "int", "low": 1, "high": 3, "when": {"dendrites.switch_mode": "x"}}}, "not in sweep.space"),
        (
            {
                "dendrites.switch_mode": {"type": "categorical", "choices": ["history"]},
                "dendrites.max_dendrites": {"type": "int", "low": 1, "high": 3, "when": {"dendrites.switch_mode": "fixed"}},
            },
            "can never happen",
        ),
        ({"sweep.n_trials": {"type": "int", "low": 1, "high": 3}}, "only run settings"),
    ],
)
def test_bad_spaces_fail_before_anything_runs(cfg, space, words):
    with pytest.raises(SweepError, match=words):
        parse_space(space, cfg)
