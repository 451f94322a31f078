"""Behaviour around switches (instability vs smooth) and generalization (train-validation gap)."""

from __future__ import annotations

import math

from pai_sweep.analysis.findings import Finding
from pai_sweep.analysis.measures import WINDOW, improvement, r, rel, scaled, switch_name, switch_windows
from pai_sweep.analysis.noise import Judgement, noise_of
from pai_sweep.analysis.rules import rule

UNSTABLE_REL_DROP = 0.03  # a 3% fall after a switch...
UNSTABLE_NOISE = 3.0  # ...that is also 3x the usual epoch-to-epoch change
SMOOTH_REL_DROP = 0.002  # smooth: no switch dipped more than 0.2%
GAP_WARNING, GAP_PROBLEM = 0.05, 0.10  # train-validation gap, relative (the analysis guide's 5-10%)


@rule("stability.unstable_after_switch", "stability.smooth_after_switch")
def after_switch(history, ctx):
    """Seed: 'spikes/instability after dendrite additions: lower candidate_weight_initialization_multiplier'; 'very
    smooth: could try slightly larger values'. Looks at the WINDOW epochs after each switch of the final history; a
    fall counts when it is 3% or more, 3x the usual epoch-to-epoch change and beyond the sampling noise. The finding
    is about the architectures from the first unstable switch on (a smaller architecture was measured before it)."""
    wins = [w for w in switch_windows(history, ctx) if w["epochs_after"] > 0]
    if not wins:
        return None
    noise = noise_of(history, ctx)
    drops = {w["epoch"]: Judgement(w["drop"], noise.diff_se(w["score_at_switch"], w["worst_after"])) for w in wins}
    bad = [w for w in wins if w["rel_drop"] >= UNSTABLE_REL_DROP and w["drop"] >= UNSTABLE_NOISE * w["noise_before"]
           and drops[w["epoch"]].beyond]  # a fall inside the sampling error of two scores is not instability
    ev = {"switches": [{"dendrites": w["dendrites"], "epoch": history.switch_loop_epoch(w["epoch"]), "pai_epoch": w["epoch"],
                        "score_at_switch": r(w["score_at_switch"]),
                        "worst_after": r(w["worst_after"]), "rel_drop": r(w["rel_drop"]), "noise_before": r(w["noise_before"])}
                       for w in wins], "window": WINDOW}
    cwim = ctx.candidate_weight_initialization_multiplier
    if bad:
        worst = max(bad, key=lambda w: w["rel_drop"])
        return Finding(
            "stability.unstable_after_switch", "warning", "Scores fell sharply after dendrites were added",
            f"After {switch_name(history, worst['epoch'])} the score fell {100 * worst['rel_drop']:.1f}% within {WINDOW} epochs; "
            "smaller initial dendrite weights or a lower learning rate usually calm this.",
            ev, {"dendrites.candidate_weight_initialization_multiplier": scaled(cwim, 0.1, "x0.1"),
                 "train.optimizer.args.lr": scaled(ctx.lr, 0.5, "x0.5")},
            dendrites=list(range(min(w["dendrites"] for w in bad), max([history.dendrites, *(w["dendrites"] for w in bad)]) + 1)),
        ).measured(drops[worst["epoch"]])
    if all(w["drop"] <= SMOOTH_REL_DROP * abs(w["score_at_switch"]) for w in wins):
        return Finding(
            "stability.smooth_after_switch", "info", "Smooth transitions after dendrite additions",
            "Scores did not dip after any switch: the initialisation works; slightly larger initial dendrite weights may adapt faster.",
            ev, {"dendrites.candidate_weight_initialization_multiplier": scaled(cwim, 2, "x2")},
        )
    return None


@rule("generalization.overfitting")
def overfitting(history, ctx):
    """Seed: train >> validation means overfitting (gap > 5-10%). Uses the train extra score (an extra named like
    'train', e.g. add_extra_score(acc, 'Train')) at each architecture's best epoch, from _best_arch_scores.csv."""
    name = history.extra_name("train")
    acc = history.accepted
    if name is None or acc.empty or name not in acc.columns:
        return None
    gaps = {}
    for _, row in acc.iterrows():
        t, v = float(row[name]), float(row["val"])
        if not (math.isnan(t) or math.isnan(v)):
            gaps[int(row["dendrites"])] = rel(improvement(v, t, ctx), t)
    if not gaps:
        return None
    last = max(gaps)
    gap = gaps[last]
    if gap < GAP_WARNING:
        return None
    row = acc[acc["dendrites"] == last].iloc[0]
    j = noise_of(history, ctx).diff(float(row["val"]), float(row[name]), ctx)
    if not j.beyond:
        return None  # the train score is above validation only within the sampling noise
    grew = len(gaps) > 1 and gap - gaps[min(gaps)] > 0.02
    rec = {"dendrites.max_dendrites": max(0, last - 1)} if grew else {}
    return Finding(
        "generalization.overfitting", "problem" if gap >= GAP_PROBLEM else "warning", "Training score far above validation",
        f"With {last} dendrite(s) the train score is {100 * gap:.1f}% above validation"
        f"{' and the gap grew with dendrites' if grew else ''}; add regularisation (dropout, weight decay, label smoothing, augmentation).",
        {"extra": name, "rel_gap_by_dendrites": {d: r(g) for d, g in gaps.items()}}, rec,
        dendrites=sorted(d for d, g in gaps.items() if g >= GAP_WARNING),
    ).measured(j)
