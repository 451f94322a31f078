"""Whether dendrites paid off: no help at all, gain per added parameter, larger than the original model."""

from __future__ import annotations

from pai_sweep.analysis.findings import Finding
from pai_sweep.analysis.measures import arch_gains, gain_judgement, optimal_count, r, rel, shifted
from pai_sweep.analysis.rules import rule

LOW_GAIN = 0.01  # under 1% relative gain...
BIG_GROWTH = 0.5  # ...for 50% more parameters is a poor trade


@rule("dendrites.did_not_help")
def did_not_help(history, ctx):
    """Seed: 'dendrites didn't improve performance'. Fires when every dendrite try was rejected (3.2.9 then keeps
    the base model), or the dendrites that were kept gained less than the worth threshold in total (which is never
    below the sampling error of the difference: a gain inside the noise is not help)."""
    n = history.dendrites
    rej = history.rejected
    k, gains, threshold = optimal_count(history, ctx)
    if gains.empty:
        return None
    if n == 0 and rej.empty:
        return None  # never tried: dendrites.never_added
    if n > 0 and k > 0:
        return None
    total = float(gains["total"].iloc[-1]) if n else 0.0
    j = gain_judgement(history, ctx, 0, n) if n else None
    msg = (f"All {len(rej)} dendrite try(s) were rejected: none beat the base model." if n == 0 else
           f"{n} dendrite(s) improved the score by only {r(total, 3)} +/- {r(j.se, 3)} in total, under the {r(threshold, 3)} "
           "a real gain needs here.")
    return Finding(
        "dendrites.did_not_help", "problem", "Dendrites did not help",
        msg + " Check which layers are perforated, or accept smaller gains.",
        {"kept_dendrites": n, "rejected_tries": len(rej), "total_gain": r(total), "threshold": r(threshold)},
        {"dendrites.improvement_threshold": [0.0], "dendrites.max_dendrite_tries": shifted(ctx.max_dendrite_tries, 1)},
        dendrites=[int(d) for d in gains["dendrites"] if d > 0] or None,
    ).measured(j)


def _efficiency(history, ctx):
    gains = arch_gains(history, ctx)
    if len(gains) < 2 or gains["params"].isna().any():
        return None
    p0, pn = int(gains["params"].iloc[0]), int(gains["params"].iloc[-1])
    gain = float(gains["total"].iloc[-1])
    added = pn - p0
    return {
        "dendrites": int(gains["dendrites"].iloc[-1]), "base_params": p0, "params": pn, "added_params": added,
        "param_growth": r(rel(added, p0)), "gain": r(gain), "rel_gain": r(rel(gain, float(gains["val"].iloc[0])), 5),
        "gain_per_1k_params": r(1000 * gain / added) if added else None,
        "efficiency_ratio": r(100 * gain / added, 6) if added else None,  # the analysis guide's (gain / parameter increase) x 100
    }


@rule("efficiency.low_gain_per_param")
def low_gain_per_param(history, ctx):
    """The analysis guide's parameter-efficiency check: (gain / parameter increase). In the open 3.2.9 each dendrite adds about
    one copy of every perforated module, so a model that grows by half or more for under 1% gain, or for a gain
    inside the sampling noise, is flagged."""
    ev = _efficiency(history, ctx)
    if ev is None or ev["param_growth"] < BIG_GROWTH:
        return None
    j = gain_judgement(history, ctx, 0, ev["dendrites"])
    if ev["rel_gain"] >= LOW_GAIN and (j is None or j.beyond):
        return None  # a real gain of 1% or more: not little (a gain inside the noise is little, whatever its size)
    return Finding(
        "efficiency.low_gain_per_param", "warning", "Little gain for the added parameters",
        f"{ev['dendrites']} dendrite(s) grew the model by {100 * ev['param_growth']:.0f}% ({ev['added_params']} parameters) "
        f"for a {100 * ev['rel_gain']:.2f}% better score ({r(j.effect, 3)} +/- {r(j.se, 3)}); compare with a plain model of the same size, or perforate a smaller base.",
        ev, {}, dendrites=[ev["dendrites"]],
    ).measured(j)


@rule("efficiency.larger_than_original")
def larger_than_original(history, ctx):
    """Seed: 'if your perforated model is LARGER than your original, reduce the base first'. Needs the original
    model's parameter count (context original_params, or baseline_params)."""
    original = ctx.original_params or ctx.baseline_params
    ev = _efficiency(history, ctx)
    if not original or ev is None or ev["params"] <= original:
        return None
    acc = history.accepted
    fits = acc[acc["params"] <= original]["dendrites"]
    rec = {"dendrites.max_dendrites": int(fits.max())} if not fits.empty else {}
    return Finding(
        "efficiency.larger_than_original", "warning", "Perforated model is larger than the original",
        f"The final model has {ev['params']} parameters, more than the original's {original}; "
        "shrink the base model before perforating, or perforate fewer layers (those near the output).",
        {**ev, "original_params": original}, rec,
    )
