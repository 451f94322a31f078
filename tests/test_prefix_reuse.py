"""sweep.prefix_reuse: which params a sampler trial takes from a front trial, and when (no training here)."""

from __future__ import annotations

import json
import random

import optuna
from optuna.distributions import FloatDistribution, IntDistribution

from pai_sweep.search_space import parse_space
from pai_sweep.sweep.prefix_reuse import fixed_prefix, pre_switch_keys

SPACE = parse_space({
    "downsize.width_mult": {"type": "float", "low": 0.25, "high": 1.0, "step": 0.25},
    "dendrites.n_epochs_to_switch": {"type": "int", "low": 2, "high": 5},
    "dendrites.max_dendrites": {"type": "int", "low": 0, "high": 3},
    "dendrites.candidate_weight_initialization_multiplier": {"type": "float", "low": 0.001, "high": 0.1, "log": True},
})
DISTS = {"downsize.width_mult": FloatDistribution(0.25, 1.0, step=0.25), "dendrites.n_epochs_to_switch": IntDistribution(2, 5),
         "dendrites.max_dendrites": IntDistribution(0, 3),
         "dendrites.candidate_weight_initialization_multiplier": FloatDistribution(0.001, 0.1, log=True)}


def _study(tmp_path, rows):
    """rows: (params, values, keeps a branch point)"""
    study = optuna.create_study(directions=["maximize", "minimize"])
    for i, (params, values, branch) in enumerate(rows):
        folder = tmp_path / str(i)
        if branch:
            (folder / "branch").mkdir(parents=True)
            (folder / "branch" / "branch.json").write_text(json.dumps({"epoch": 5, "signature": "x"}))
        study.add_trial(optuna.trial.create_trial(params=params, distributions=DISTS, values=values,
                                                  user_attrs={"origin": "sampler", "trial_dir": str(folder)}))
    return study


def test_pre_switch_keys_are_the_architecture_and_the_switch_timing():
    assert pre_switch_keys(SPACE) == ["downsize.width_mult", "dendrites.n_epochs_to_switch"]


def test_a_front_trial_with_a_branch_point_gives_its_pre_switch_params(tmp_path):
    p = {"downsize.width_mult": 0.5, "dendrites.n_epochs_to_switch": 3, "dendrites.max_dendrites": 1,
         "dendrites.candidate_weight_initialization_multiplier": 0.01}
    dominated = {**p, "downsize.width_mult": 1.0}
    no_branch = {**p, "downsize.width_mult": 0.25}
    study = _study(tmp_path, [(p, [80.0, 1000.0], True), (dominated, [70.0, 3000.0], True), (no_branch, [60.0, 500.0], False)])
    trials = study.get_trials()
    found = fixed_prefix(trials, study.directions, SPACE, share=1.0, startup=3, rng=random.Random(0))
    assert found == ({"downsize.width_mult": 0.5, "dendrites.n_epochs_to_switch": 3}, 0)  # not the dominated, not the unbranched
    # not before the start-up, not when the draw says sample, not when nothing acts after the switch
    assert fixed_prefix(trials, study.directions, SPACE, share=1.0, startup=4, rng=random.Random(0)) is None
    assert fixed_prefix(trials, study.directions, SPACE, share=0.0, startup=3, rng=random.Random(0)) is None
    # the draw: seed 0's first draw is 0.84 (samples at share 0.5), seed 1's is 0.13 (reuses)
    assert fixed_prefix(trials, study.directions, SPACE, share=0.5, startup=3, rng=random.Random(0)) is None
    assert fixed_prefix(trials, study.directions, SPACE, share=0.5, startup=3, rng=random.Random(1)) is not None
    only_pre = parse_space({"downsize.width_mult": {"type": "float", "low": 0.25, "high": 1.0, "step": 0.25}})
    assert fixed_prefix(trials, study.directions, only_pre, share=1.0, startup=3, rng=random.Random(0)) is None


def test_an_enqueued_prefix_fixes_those_keys_and_the_sampler_draws_the_rest(tmp_path):
    p = {"downsize.width_mult": 0.5, "dendrites.n_epochs_to_switch": 3, "dendrites.max_dendrites": 1,
         "dendrites.candidate_weight_initialization_multiplier": 0.01}
    study = _study(tmp_path, [(p, [80.0, 1000.0], True)] * 3)
    fixed, parent = fixed_prefix(study.get_trials(), study.directions, SPACE, share=1.0, startup=3, rng=random.Random(1))
    study.enqueue_trial(fixed, user_attrs={"origin": "sampler", "prefix_of": parent})
    trial = study.ask()
    from pai_sweep.search_space import suggest

    drawn = suggest(trial, SPACE)
    assert drawn["downsize.width_mult"] == 0.5 and drawn["dendrites.n_epochs_to_switch"] == 3
    assert set(drawn) == set(SPACE.keys) and trial.user_attrs["prefix_of"] == parent
