"""When and how often dendrites were added: never, rejected tries, before a plateau, too often, too rarely."""

from __future__ import annotations

import math

from pai_sweep.analysis.findings import Finding
from pai_sweep.analysis.measures import WINDOW, arch_gains, epoch_name, r, scaled, switch_name, switch_windows, worth_threshold
from pai_sweep.analysis.noise import noise_of
from pai_sweep.analysis.rules import rule

PREMATURE_REL_GAIN = 0.02  # +2% over the last WINDOW epochs before a switch: still improving (the analysis guide's example)
PREMATURE_SHARE = 0.5  # or half of the architecture's whole gain came in those epochs


@rule("dendrites.never_added")
def never_added(history, ctx):
    """No switch at all: no switch_epochs rows and no rejected try. The analysis guide reads _noImprove_ files as 'dendrites
    never added'; in 3.2.9 they are snapshots of a rejected dendrite try (pai_digits_history_run has two and kept
    one dendrite), so they do not count here. In pai-sweep the loop is the worker's: the usual cause is the epoch
    cap (or a patience longer than the run), not a `for` loop."""
    if history.scores.empty or not history.switches.empty or not history.rejected.empty:
        return None
    if history.ended_by == "failed":
        return None
    epochs = history.total_epochs
    vals = history.scores["val"].to_numpy(dtype=float)
    best = int(vals.argmax() if ctx.maximizing else vals.argmin())
    ev = {"epochs": epochs, "best_epoch": history.loop_epoch(best), "epochs_since_best": len(vals) - 1 - best,
          "n_epochs_to_switch": ctx.n_epochs_to_switch, "switch_mode": ctx.switch_mode, "ended_by": history.ended_by}
    if ctx.switch_mode == "no_switch":
        return Finding("dendrites.never_added", "problem", "Dendrites were never added",
                       "The run used switch mode no_switch, which never adds dendrites.", ev,
                       {"dendrites.switch_mode": "history"})
    patience = ctx.n_epochs_to_switch
    want = max(2 * epochs, epochs + 2 * (patience or 5))
    return Finding(
        "dendrites.never_added", "problem", "Dendrites were never added",
        f"Training stopped after {epochs} epochs without PerforatedAI ever adding a dendrite "
        f"({len(vals) - 1 - best} epoch(s) since the last improvement); let it run until PerforatedAI reports completion.",
        ev,
        {"train.max_epochs": want if ctx.max_epochs is not None else "x2",
         "dendrites.n_epochs_to_switch": scaled(patience, 0.5, "x0.5", integer=True, minimum=1)},
    )


@rule("dendrites.rejected_tries")
def rejected_tries(history, ctx):
    """3.2.9 behaviour the analysis guide does not describe: a dendrite set that does not beat the previous best by
    improvement_threshold is discarded (a _noImprove_ snapshot holds its row), retried up to max_dendrite_tries,
    then training completes with the best model."""
    rej = history.rejected
    if rej.empty:
        return None
    tries = [{"dendrites": int(x["dendrites"]), "params": r(x["params"]), "val": r(x["val"]), "file": x["source"]}
             for _, x in rej.iterrows()]
    return Finding(
        "dendrites.rejected_tries", "info", f"{len(tries)} dendrite try(s) rejected",
        f"PerforatedAI discarded {len(tries)} dendrite set(s) that did not beat the previous best "
        f"and kept {history.dendrites} dendrite(s).",
        {"rejected": tries, "kept_dendrites": history.dendrites, "ended_by": history.ended_by}, {},
    )


@rule("switch.before_plateau")
def before_plateau(history, ctx):
    """Seed: dendrites added while the score was still rising. 3.2.9 rolls the history back to the best epoch at a
    switch, so the window is the WINDOW epochs up to that epoch. The analysis guide's n_epochs_for_switch_history does not
    exist in 3.2.9, and raising improvement_threshold (its other advice) makes 3.2.9 switch sooner, not later:
    the advice is a longer n_epochs_to_switch (history mode) or fixed_switch_num (fixed mode). The rise must also be
    beyond the sampling noise of two scores."""
    if history.ended_by == "capacity_test" or ctx.switch_mode == "every_time":
        return None
    early = []
    noise = noise_of(history, ctx)
    for w in switch_windows(history, ctx):
        g, share = w["rel_gain_last_epochs"], w["gain_last_epochs"] / w["segment_gain"] if w["segment_gain"] else 0
        if math.isnan(g):
            continue
        rise = noise.diff(w["score_before_window"], w["score_at_switch"], ctx)
        if not rise.beyond:
            continue  # the rise before the switch is inside the sampling noise: no evidence it was still improving
        if g >= PREMATURE_REL_GAIN or (w["segment_epochs"] >= 2 * WINDOW + 1 and share >= PREMATURE_SHARE):
            early.append({"dendrites": w["dendrites"], "switch_epoch": history.switch_loop_epoch(w["epoch"]),
                          "kept_epoch": history.loop_epoch(w["epoch"]), "pai_epoch": w["epoch"], "rel_gain_last_epochs": r(g),
                          "share_of_segment_gain": r(share), "rise": rise})
    if not early:
        return None
    if ctx.switch_mode == "fixed":
        rec = {"dendrites.fixed_switch_num": scaled(ctx.fixed_switch_num, 1.5, "x1.5", integer=True)}
    else:
        rec = {"dendrites.n_epochs_to_switch": scaled(ctx.n_epochs_to_switch, 2, "x2", integer=True, minimum=2)}
    first = early[0]
    rises = [e.pop("rise") for e in early]
    return Finding(
        "switch.before_plateau", "warning", "Dendrites added before the score plateaued",
        f"At {switch_name(history, first['pai_epoch'])} the score had still risen {100 * first['rel_gain_last_epochs']:.1f}% "
        f"in the {WINDOW} kept epochs up to {epoch_name(history, first['pai_epoch'])} (the model PerforatedAI kept); "
        "the base network could have improved more first.",
        {"switches": early, "window": WINDOW, "switch_mode": ctx.switch_mode}, rec,
        dendrites=[e["dendrites"] - 1 for e in early],
    ).measured(rises[0])


@rule("switch.too_often")
def too_often(history, ctx):
    """Seed: 'dendrites added too frequently: tighten the threshold'. In 3.2.9 improvement_threshold is also the gain a
    new dendrite set needs to be kept, so a larger one keeps fewer low-value sets. Fires when two or more accepted
    dendrites each gained less than the worth threshold."""
    if history.ended_by == "capacity_test":
        return None
    gains = arch_gains(history, ctx)
    threshold = worth_threshold(gains, noise_of(history, ctx))
    small = gains[(gains["dendrites"] > 0) & (gains["gain"] < threshold)]
    if len(small) < 2:
        return None
    return Finding(
        "switch.too_often", "warning", "Dendrites kept for very small gains",
        f"{len(small)} of {history.dendrites} dendrites were kept for gains below {r(threshold, 3)}; "
        "a larger improvement_threshold keeps only dendrite sets that pay off.",
        {"small_gains": {int(d): r(g) for d, g in zip(small["dendrites"], small["gain"])}, "threshold": r(threshold)},
        {"dendrites.improvement_threshold": scaled(ctx.improvement_threshold, 2, "x2", minimum=0.001)},
        dendrites=[int(d) for d in small["dendrites"]],
    )


@rule("switch.too_rarely")
def too_rarely(history, ctx):
    """Seed: 'dendrites rarely added but helpful: relax the threshold (or [0])'. The 3.2.9 evidence: a rejected try
    that did beat the previous architecture beyond the sampling noise, only by less than improvement_threshold."""
    rej = history.rejected
    acc = history.accepted
    if rej.empty or acc.empty:
        return None
    prev = dict(zip(acc["dendrites"], acc["val"]))
    near = []
    noise = noise_of(history, ctx)
    for _, t in rej.iterrows():
        before = prev.get(int(t["dendrites"]) - 1)
        if before is not None and noise.diff(before, float(t["val"]), ctx).beyond:
            near.append({"dendrites": int(t["dendrites"]), "val": r(t["val"]), "previous_best": r(before), "file": t["source"]})
    if not near:
        return None
    return Finding(
        "switch.too_rarely", "info", "Helpful dendrites rejected by the threshold",
        f"{len(near)} rejected dendrite try(s) beat the previous architecture beyond the noise, but by less than improvement_threshold.",
        {"rejected_but_better": near, "improvement_threshold": ctx.improvement_threshold},
        {"dendrites.improvement_threshold": scaled(ctx.improvement_threshold, 0.5, "x0.5")},
    )
