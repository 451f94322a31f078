"""Findings judge differences against their sampling error; derived points are values only at a plateau."""

from __future__ import annotations

import math
from types import SimpleNamespace as NS

import optuna
import pytest

from pai_sweep.analysis import RuleContext, choose_architecture, read_history, run_rules
from pai_sweep.analysis.findings import Finding
from pai_sweep.analysis.measures import plateau
from pai_sweep.analysis.noise import Noise, epoch_spread, noise_of
from pai_sweep.objective import compute_values
from pai_sweep.search_space import parse_space
from pai_sweep.sweep.feedback import derived_trials, lower_bounds
from pai_sweep.trial_files import TrialResult

FLAT = [80.0, 84.0, 85.0, 85.3, 85.2, 85.4, 85.3, 85.5]


def acc(n: int) -> RuleContext:
    """A run whose score is an accuracy (percent) measured on n validation samples."""
    return RuleContext(val_samples=n, score_kind="accuracy_percent")


def fired(folder, ctx):
    return {f.rule_id: f for f in run_rules(read_history(folder), ctx)}


def test_binomial_standard_error_of_an_accuracy():
    noise = Noise("binomial", samples=1000)
    assert noise.se_at(85.0) == pytest.approx(100 * math.sqrt(0.85 * 0.15 / 1000))  # 1.13 points
    assert noise.diff_se(85.0, 85.0) == pytest.approx(math.sqrt(2) * noise.se_at(85.0))
    assert noise.se_at(100.0) > 0  # never certain from a finite set


def test_epoch_spread_ignores_a_steady_trend_and_measures_scatter(build):
    ramp = read_history(build([[50.0 + 2 * i for i in range(12)]]))
    assert epoch_spread(ramp) == 0.0  # a rising curve is not noise
    assert noise_of(ramp, RuleContext()).kind == "unknown"
    scatter = read_history(build([[85.0, 86.0, 84.5, 85.5, 84.0, 86.5, 85.0, 84.8], [85.2, 86.1, 84.4, 85.6, 84.9, 86.0]]))
    spread = epoch_spread(scatter)
    assert 0.3 < spread < 2.0
    assert noise_of(scatter, RuleContext()).kind == "epoch_spread"


@pytest.mark.parametrize("n,helped", [(1000, False), (1_000_000, True)])
def test_dendrite_gain_counts_only_beyond_the_noise(build, n, helped):
    folder = build([FLAT, [85.0, 85.8], [86.2]])  # +0.3 then +0.4 on an 85.5 base
    got = fired(folder, acc(n))
    assert ("dendrites.all_helped" in got) is helped
    assert ("dendrites.did_not_help" in got) is not helped
    f = got["dendrites.all_helped" if helped else "dendrites.did_not_help"]
    assert f.effect == pytest.approx(0.7) and f.se > 0 and 0.5 < f.confidence <= 1.0
    assert (f.effect >= 2 * f.se) is helped
    assert choose_architecture(read_history(folder), acc(n)).dendrites == (2 if helped else 0)


@pytest.mark.parametrize("n,unstable", [(200, False), (100_000, True)])
def test_a_drop_after_a_switch_is_instability_only_beyond_the_noise(build, n, unstable):
    plateau_then_dip = [84.0, 85.0, 85.4, 85.5, 85.4, 85.5, 85.6, 85.5]
    folder = build([plateau_then_dip, [82.6, 83.0, 85.8, 86.0]])  # -2.9 points (3.4%) right after the switch
    got = fired(folder, acc(n))
    assert ("stability.unstable_after_switch" in got) is unstable
    if unstable:
        f = got["stability.unstable_after_switch"]
        assert f.effect == pytest.approx(2.9) and f.dendrites == [1]


@pytest.mark.parametrize("n,improving", [(300, False), (1_000_000, True)])
def test_still_improving_needs_a_rise_beyond_the_noise(build, n, improving):
    folder = build([[80.0, 84.0, 85.0, 85.2, 85.3, 85.4, 85.9, 86.1]])  # +0.8 in the last 3 epochs
    ctx = RuleContext(val_samples=n, score_kind="accuracy_percent", max_epochs=8)
    assert ("training.still_improving" in fired(folder, ctx)) is improving


def test_a_phase_cut_short_while_rising_is_a_lower_bound(build):
    rising = [60.0, 66.0, 71.0, 75.0, 78.0, 81.0, 84.0]
    folder = build([rising, [86.0, 87.5, 88.0, 88.2, 88.1, 88.3, 88.2]], params=[1000, 2000])
    h, ctx = read_history(folder), acc(1000)
    assert plateau(h, ctx, 0)[0] is False
    space = parse_space({"dendrites.max_dendrites": {"type": "int", "low": 0, "high": 3}}, None)
    result = TrialResult(status="complete", reason="pai_complete", best_val=88.3, params=2000, dendrites=1)
    objective = NS(name="accuracy", metric="val", use_analysis=True, penalties={}, direction=None)
    assert derived_trials(h, None, 3, {"dendrites.max_dendrites": 1}, space, result, objective, None, context=ctx) == []
    bounds = lower_bounds(h, ctx)
    assert [b["dendrites"] for b in bounds] == [0] and bounds[0]["val"] == 84.0
    assert bounds[0]["still_rising"]["beyond_noise"] is True

    flat = build([FLAT, [86.0, 87.5, 88.0, 88.2, 88.1, 88.3, 88.2]], params=[1000, 2000])
    h2 = read_history(flat)
    assert plateau(h2, ctx, 0)[0] is True and lower_bounds(h2, ctx) == []
    told = derived_trials(h2, None, 3, {"dendrites.max_dendrites": 1}, space, result, objective, None, context=ctx)
    assert [t.values for t in told] == [[85.5]]


def test_a_derived_point_and_its_parent_are_charged_alike():
    """The same 1-dendrite model scores the same whether it is the parent's choice or a derived point."""
    import pandas as pd

    table = pd.DataFrame({"dendrites": [0, 1, 2], "params": [1000, 2000, 3000], "val": [85.0, 88.0, 88.2],
                          "accepted": [True, True, True]})
    steady = [80.0, 84.0, 85.0, 85.2, 85.1, 85.2, 85.3, 85.2]
    metrics = pd.DataFrame({"val": steady * 3, "dendrites": [0] * 8 + [1] * 8 + [2] * 8})
    history = NS(best_arch=table, metrics=metrics, scores=pd.DataFrame(), extra_name=lambda kind: None)
    unstable_from_1 = Finding("stability.unstable_after_switch", "warning", "t", "m", dendrites=[1, 2])
    only_2 = Finding("generalization.overfitting", "warning", "t", "m", dendrites=[2])
    objective = NS(name="accuracy", metric="val", use_analysis=True, direction=None,
                   penalties={"stability.unstable_after_switch": 0.5, "generalization.overfitting": 0.5})
    result = TrialResult(status="complete", reason="pai_complete", best_val=88.2, params=3000, dendrites=2)
    space = parse_space({"dendrites.max_dendrites": {"type": "int", "low": 0, "high": 3}}, None)
    findings = [unstable_from_1, only_2]
    # a sibling trial that ran with max_dendrites=1 and chose 1 dendrite
    sibling = compute_values(result, history, findings, NS(dendrites=1, val=88.0, test=None, params=2000), objective)
    derived = {t.params["dendrites.max_dendrites"]: t for t in
               derived_trials(history, None, 7, {"dendrites.max_dendrites": 2}, space, result, objective, None, findings=findings)}
    assert sibling.values == [87.5] and derived[1].values == [87.5]  # both charged 0.5 for the instability from 1 on
    assert derived[0].values == [85.0]  # measured before any dendrite: charged nothing
    assert derived[1].user_attrs["penalized_rules"] == ["stability.unstable_after_switch"]
    # a parent whose own value stands for 1 dendrite gets no derived copy of that point
    parent = NS(user_attrs={"chosen_dendrites": 1, "trial_dir": "t"})
    again = derived_trials(history, parent, 7, {"dendrites.max_dendrites": 2}, space, result, objective, None, findings=findings)
    assert [t.params["dendrites.max_dendrites"] for t in again] == [0]
    study = optuna.create_study()
    for t in derived.values():
        study.add_trial(t)
    assert len(study.trials) == 2
