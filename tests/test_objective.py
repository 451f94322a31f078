"""Objective values from hand-built results, choices and findings: no study, no files."""

from __future__ import annotations

import math
from types import SimpleNamespace as NS

import optuna
import pytest

from pai_sweep.errors import ConfigError, SweepError
from pai_sweep.objective import CONSTRAINT, Baseline, compute_values, directions
from pai_sweep.trial_files import TrialResult


def objective(**kw):
    base = {"name": "accuracy", "metric": "val", "use_analysis": True, "direction": None, "tolerance": 1.0,
            "param_weight": 1.0, "penalties": {"dendrites_never_added": 1.0, "overfitting": 0.5}}
    base.update(kw)
    return NS(**base)


RESULT = TrialResult(status="complete", reason="pai_complete", best_val=95.0, best_test=94.0, params=4000, base_params=1000, dendrites=2)
CHOICE = NS(dendrites=1, val=93.0, test=92.5, params=2000, reason="diminishing returns after 1")


def test_accuracy_uses_the_analysis_choice_and_charges_penalties_once_per_rule():
    findings = [NS(rule_id="overfitting"), NS(rule_id="overfitting"), NS(rule_id="unpriced_rule")]
    out = compute_values(RESULT, None, findings, CHOICE, objective())
    assert out.values == [93.0 - 0.5]
    assert out.attrs["chosen_dendrites"] == 1 and out.attrs["penalized_rules"] == ["overfitting"]
    assert not out.constraints
    raw = compute_values(RESULT, None, findings, None, objective(metric="test"))
    assert raw.values == [94.0 - 0.5] and raw.attrs["chosen_by"] == "result"


def test_minimised_metric_flips_the_penalty_sign():
    loss = TrialResult(status="complete", reason="x", best_val=0.3, params=10, maximizing=False)
    out = compute_values(loss, None, [NS(rule_id="overfitting")], None, objective())
    assert out.values == [pytest.approx(0.8)]


def test_efficiency_constraint_against_a_baseline():
    base = Baseline(score=93.5, params=1000)
    ok = compute_values(RESULT, None, [], CHOICE, objective(name="efficiency"), base)
    assert ok.values == [93.0, 2000.0]
    assert ok.constraints[CONSTRAINT] == pytest.approx(-0.5) and ok.attrs["feasible"]
    worse = NS(dendrites=0, val=92.0, test=92.0, params=1000)
    bad = compute_values(RESULT, None, [], worse, objective(name="efficiency"), base)
    assert bad.constraints[CONSTRAINT] == pytest.approx(0.5) and not bad.attrs["feasible"]
    # Without a baseline there is no constraint, and Optuna takes the values as they are.
    assert compute_values(RESULT, None, [], CHOICE, objective(name="efficiency")).constraints == {}
    # The stored constraint is what Optuna's samplers read from a trial.
    trial = optuna.trial.create_trial(values=bad.values, constraints=bad.constraints)
    study = optuna.create_study(directions=directions(objective(name="efficiency"), True))
    study.add_trial(trial)
    assert study.trials[0].constraints == {CONSTRAINT: pytest.approx(0.5)}


def test_scalar_weights_parameter_growth_against_the_base_model():
    out = compute_values(RESULT, None, [], CHOICE, objective(name="scalar", param_weight=2.0))
    assert out.values == [pytest.approx(93.0 - 2.0 * math.log2(2000 / 1000))]
    with_baseline = compute_values(RESULT, None, [], CHOICE, objective(name="scalar", param_weight=1.0), Baseline(90.0, 500))
    assert with_baseline.values == [pytest.approx(93.0 - 2.0)]


def test_nan_score_and_missing_params_are_errors():
    nan = NS(dendrites=1, val=float("nan"), test=None, params=10)
    with pytest.raises(SweepError, match="no finite val score"):
        compute_values(RESULT, None, [], nan, objective())
    with pytest.raises(SweepError, match="parameter count"):
        compute_values(RESULT, None, [], NS(dendrites=1, val=90.0, params=None), objective(name="efficiency"))


def test_directions_and_a_direction_that_contradicts_the_metric():
    assert directions(objective(name="efficiency"), True) == ["maximize", "minimize"]
    assert directions(objective(), False) == ["minimize"]
    with pytest.raises(ConfigError, match="contradicts dendrites.maximizing_score=True"):
        directions(objective(direction="minimize"), True)
