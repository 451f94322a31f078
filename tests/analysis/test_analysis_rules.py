"""Every rule fires on a run made for it and stays quiet on one that is not (built folders and real fixtures)."""

from __future__ import annotations

import pytest
from run_builder import CAPACITY_RUN, HISTORY_RUN

from pai_sweep.analysis import RuleContext, read_history, run_rules
from pai_sweep.analysis.rules import all_rules

RISING = [50.0, 60.0, 70.0, 80.0, 85.0, 90.0]
FLAT = [80.0, 84.0, 85.0, 85.3, 85.2, 85.4, 85.3, 85.5]


def _fired(path, ctx=None):
    return {f.rule_id: f for f in run_rules(read_history(path), ctx)}


def _case(name, build):
    """Folders (and contexts) that make exactly the named rule fire; built on demand inside tmp_path."""
    cases = {
        "dendrites.diminishing_returns": lambda: build([FLAT, [86, 88.0], [88.1], [88.2]]),
        "dendrites.all_helped": lambda: build([FLAT, [87, 90.0], [92.0]]),
        "dendrites.never_added": lambda: build([FLAT]),
        "dendrites.rejected_tries": lambda: HISTORY_RUN,
        "switch.before_plateau": lambda: build([RISING, [91.0, 92.0]]),
        "switch.too_often": lambda: build([FLAT, [90.0], [90.1], [90.2]]),
        "switch.too_rarely": lambda: build([FLAT, [88.0]], rejected=[(2, 3000, 88.05)]),
        "dendrites.did_not_help": lambda: build([FLAT], rejected=[(1, 2000, 85.0)]),
        "stability.unstable_after_switch": lambda: build([FLAT, [70.0, 75.0, 86.0, 86.5]]),
        "stability.smooth_after_switch": lambda: CAPACITY_RUN,
        "generalization.overfitting": lambda: build([FLAT], train=[[99.0] * len(FLAT)]),
        "lr.dropped_too_fast": lambda: build([[80, 84, 85, 85.1, 85.0, 85.1, 85.2, 85.1]], lr=[0.1, 0.1, 0.01] + [0.001] * 5),
        "lr.stayed_high": lambda: build([[50, 70, 80, 85, 80, 86, 79, 85, 78]]),
        "training.still_improving": lambda: build([RISING]),
        "training.converged_early": lambda: build([[50, 80, 90, 89, 89.5, 89, 88, 89, 89, 88.5]]),
        "modules.low_pb_scores": lambda: build([FLAT], pb={".0": 0.005, ".2": 0.05}),
        "modules.high_pb_scores": lambda: build([FLAT], pb={".0": 0.04, ".2": 0.05}),
        "efficiency.low_gain_per_param": lambda: HISTORY_RUN,
        "efficiency.larger_than_original": lambda: CAPACITY_RUN,
    }
    return cases[name]()


CONTEXTS = {"efficiency.larger_than_original": RuleContext(original_params=3000)}
# Where the real fixtures keep a rule quiet (and why it is quiet there)
QUIET_ON = {
    "dendrites.diminishing_returns": HISTORY_RUN,  # one dendrite: nothing to diminish
    "dendrites.all_helped": HISTORY_RUN,  # PerforatedAI rejected the next set itself
    "dendrites.never_added": CAPACITY_RUN,
    "dendrites.rejected_tries": CAPACITY_RUN,
    "switch.before_plateau": HISTORY_RUN,  # +1% over the 3 epochs before the switch
    "switch.too_often": HISTORY_RUN,
    "switch.too_rarely": HISTORY_RUN,  # the rejected tries only equalled the previous best
    "dendrites.did_not_help": CAPACITY_RUN,
    "stability.unstable_after_switch": HISTORY_RUN,  # a 1.2% dip: within the rule's 3%
    "stability.smooth_after_switch": HISTORY_RUN,
    "generalization.overfitting": HISTORY_RUN,  # 2.7% train-validation gap
    "lr.dropped_too_fast": HISTORY_RUN,
    "lr.stayed_high": HISTORY_RUN,  # constant LR but the swing stays under 1% per epoch
    "training.still_improving": HISTORY_RUN,  # completed by PerforatedAI
    "training.converged_early": CAPACITY_RUN,
    "modules.low_pb_scores": HISTORY_RUN,  # header-only Best PBScores.csv (no PB)
    "modules.high_pb_scores": HISTORY_RUN,
    "efficiency.low_gain_per_param": CAPACITY_RUN,  # +47% score for the parameters
    "efficiency.larger_than_original": CAPACITY_RUN,  # no original size known
}
RULE_IDS = sorted({i for r in all_rules() for i in r.rule_ids})


def test_every_rule_id_has_a_fire_and_a_quiet_case():
    assert set(QUIET_ON) == set(RULE_IDS)
    assert all(r.doc for r in all_rules())  # each rule says which seed rule it implements


@pytest.mark.parametrize("rule_id", RULE_IDS)
def test_rule_fires(rule_id, build):
    fired = _fired(_case(rule_id, build), CONTEXTS.get(rule_id))
    assert rule_id in fired, sorted(fired)
    f = fired[rule_id]
    assert f.message and f.title and isinstance(f.evidence, dict) and f.evidence
    assert "analysis.rule_error" not in fired


@pytest.mark.parametrize("rule_id", RULE_IDS)
def test_rule_quiet(rule_id):
    assert rule_id not in _fired(QUIET_ON[rule_id])


def test_recommendations_are_absolute_with_context_relative_without(build):
    folder = build([RISING, [91.0, 92.0]])
    assert _fired(folder)["switch.before_plateau"].recommendation == {"dendrites.n_epochs_to_switch": "x2"}
    ctx = RuleContext(switch_mode="history", n_epochs_to_switch=3)
    assert _fired(folder, ctx)["switch.before_plateau"].recommendation == {"dendrites.n_epochs_to_switch": 6}
    fixed = RuleContext(switch_mode="fixed", fixed_switch_num=10)
    assert _fired(folder, fixed)["switch.before_plateau"].recommendation == {"dendrites.fixed_switch_num": 15}


def test_specific_recommendations(build):
    assert _fired(build([FLAT, [86, 88.0], [88.1], [88.2]]))["dendrites.diminishing_returns"].recommendation == {
        "dendrites.max_dendrites": 1}
    unstable = _fired(build([FLAT, [70.0, 75.0, 86.0, 86.5]]),
                      RuleContext(candidate_weight_initialization_multiplier=0.1, lr=0.01))["stability.unstable_after_switch"]
    assert unstable.recommendation == {"dendrites.candidate_weight_initialization_multiplier": 0.01,
                                       "train.optimizer.args.lr": 0.005}
    low = _fired(build([FLAT], pb={".0": 0.005, ".2": 0.05}), RuleContext(module_ids_to_track=[".bn"]))
    assert low["modules.low_pb_scores"].recommendation == {"dendrites.module_ids_to_track": [".bn", ".0"]}
    bigger = _fired(CAPACITY_RUN, RuleContext(original_params=3000))["efficiency.larger_than_original"]
    assert bigger.recommendation == {"dendrites.max_dendrites": 1}  # 2446 params still fit under 3000
    never = _fired(build([FLAT]), RuleContext(switch_mode="no_switch"))["dendrites.never_added"]
    assert never.recommendation == {"dendrites.switch_mode": "history"} and never.severity == "problem"


def test_minimising_score_flips_directions(build):
    loss = [2.0, 1.5, 1.2, 1.0, 0.9, 0.8]  # a loss still falling: still improving when minimised
    folder = build([loss], maximizing=False, config={"maximizing_score": False})
    fired = _fired(folder)
    assert "training.still_improving" in fired and "training.converged_early" not in fired


def test_docs_list_every_rule(repo_root):
    text = (repo_root / "docs" / "analysis.md").read_text()
    assert [i for i in RULE_IDS if f"| {i} |" not in text] == []


def test_kept_dendrites_with_no_real_gain_did_not_help(build):
    fired = _fired(build([FLAT, [85.0, 85.45], [85.5]]))  # -0.05 then +0.05 on an 85.5 base
    assert fired["dendrites.did_not_help"].evidence["kept_dendrites"] == 2


def test_summary_and_choice_with_a_baseline(build):
    from pai_sweep.analysis import choose_architecture, summarize

    folder = build([FLAT, [86, 88.0], [88.1], [88.2]], params=[1000, 2000, 3000, 4000])
    ctx = RuleContext(baseline_score=87.0, baseline_params=5000)
    s = summarize(read_history(folder), ctx)
    assert s["baseline"] == {"score": 87.0, "params": 5000, "difference": 1.2}
    assert s["params"]["growth_pct"] == 300.0 and s["dendrites"] == 3
    c = choose_architecture(read_history(folder), ctx)
    assert (c.dendrites, c.val, c.params) == (1, 88.0, 2000)
