"""How many dendrites were worth it: diminishing returns, or every one helped."""

from __future__ import annotations

from pai_sweep.analysis.findings import Finding
from pai_sweep.analysis.measures import gain_judgement, optimal_count, r, scaled
from pai_sweep.analysis.rules import rule

_COMPLETE_EARLY = ("tries_exhausted",)  # PerforatedAI itself found the limit: more dendrites would be rejected


@rule("dendrites.diminishing_returns")
def diminishing_returns(history, ctx):
    """Seed: 'if score gains plateau after N dendrites, recommend max_dendrites=N'. Gains come from the accepted rows
    of _best_arch_scores.csv; N is the smallest count after which all further gains add up to less than a quarter
    of the best single dendrite's gain (and at least 0.1% of the baseline score), and never less than the sampling
    error of a difference allows (noise.Z standard errors): gains inside the noise are not returns."""
    k, gains, threshold = optimal_count(history, ctx)
    n = history.dendrites
    if n < 2 or not 1 <= k < n:
        return None
    later = float(gains.loc[gains["dendrites"] > k, "gain"].sum())
    return Finding(
        "dendrites.diminishing_returns", "info", f"Diminishing returns after {k} dendrite(s)",
        f"The first {k} dendrite(s) gave {r(gains['total'].iloc[k], 3)} of the {r(gains['total'].iloc[-1], 3)} total gain; "
        f"the other {n - k} added only {r(later, 3)} for {int(gains['params'].iloc[-1] - gains['params'].iloc[k])} more parameters.",
        {"optimal_dendrites": k, "dendrites": n, "threshold": r(threshold),
         "gains": {int(d): r(g) for d, g in zip(gains["dendrites"], gains["gain"])},
         "params": {int(d): int(p) for d, p in zip(gains["dendrites"], gains["params"]) if p == p}},
        {"dendrites.max_dendrites": k},
        dendrites=[int(d) for d in gains["dendrites"] if d > k],
    ).measured(gain_judgement(history, ctx, k, n))


@rule("dendrites.all_helped")
def all_helped(history, ctx):
    """Seed: 'if all dendrites contributed, keep or increase max_dendrites and run longer'. Quiet when PerforatedAI
    already rejected the next dendrite set (3.2.9 then completes: more dendrites would not be kept). 'Helped' means
    beyond the noise: every gain is at least the worth threshold, which includes noise.Z standard errors."""
    n = history.dendrites
    k, gains, threshold = optimal_count(history, ctx)
    if n < 1 or k != n or history.ended_by in _COMPLETE_EARLY:
        return None
    if (gains["gain"].iloc[1:] < threshold).any():
        return None
    rec = {"dendrites.max_dendrites": n + 2}
    if history.ended_by in ("epoch_cap", "unknown") and ctx.max_dendrites not in (None, n):
        rec = {"train.max_epochs": scaled(ctx.max_epochs, 2, "x2", integer=True)}  # the cap stopped it, not max_dendrites
    note = " (the library's 3-dendrite capacity test)" if history.ended_by == "capacity_test" else ""
    j = gain_judgement(history, ctx, 0, n)
    return Finding(
        "dendrites.all_helped", "info", f"Every dendrite helped ({n} added)",
        f"Each of the {n} dendrite(s){note} improved the score by at least {r(threshold, 3)} (beyond the noise); "
        f"in total {r(j.effect, 3)} +/- {r(j.se, 3)}; more dendrites or a longer run may help further.",
        {"dendrites": n, "threshold": r(threshold), "ended_by": history.ended_by,
         "gains": {int(d): r(g) for d, g in zip(gains["dendrites"], gains["gain"])}},
        rec,
    ).measured(j)
