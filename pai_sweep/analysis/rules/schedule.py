"""Learning-rate schedule and training length: LR dropped too fast / stayed high; still improving / converged early."""

from __future__ import annotations

import numpy as np

from pai_sweep.analysis.findings import Finding
from pai_sweep.analysis.measures import WINDOW, epoch_name, improvement, r, rel, scaled, shifted
from pai_sweep.analysis.noise import noise_of
from pai_sweep.analysis.rules import rule

FAST_DROP = 0.1  # LR at or below a tenth of its start...
FAST_DROP_BY = 0.5  # ...within the first half of the epochs...
PLATEAU_AFTER = 0.005  # ...followed by less than 0.5% improvement
HIGH_SWING = 0.01  # constant LR with the score swinging >= 1% per epoch at the end (trend removed)
STILL_IMPROVING = 0.005
EARLY_SHARE = 0.4  # 40% of the epochs after the last improvement


def _val_series(history):
    """The real epoch sequence when the worker recorded it (metrics.jsonl), else PerforatedAI's final history."""
    if not history.metrics.empty and "val" in history.metrics:
        return history.metrics["val"].to_numpy(dtype=float), "metrics.jsonl"
    return history.scores["val"].to_numpy(dtype=float), "Scores.csv"


def _loop_epoch(history, i: int, src: str) -> int | None:
    """The training loop's epoch of position i in _val_series (metrics.jsonl's own `epoch`, else placed)."""
    return int(history.metrics["epoch"].iloc[i]) if src == "metrics.jsonl" else history.loop_epoch(i)


@rule("lr.dropped_too_fast")
def dropped_too_fast(history, ctx):
    """Seed: 'LR dropped too quickly: scores plateaued before dendrites could be optimised; raise scheduler patience'."""
    lr, s = history.lr, history.scores
    if len(lr) < 4 or s.empty:
        return None
    rates = lr["lr"].to_numpy(dtype=float)
    lr0 = rates[0]
    low = np.nonzero(rates <= lr0 * FAST_DROP)[0]
    if not lr0 or not len(low) or low[0] >= FAST_DROP_BY * len(rates):
        return None
    t = int(lr["epoch"].iloc[low[0]])
    vals = s["val"].to_numpy(dtype=float)
    at = vals[min(t, len(vals) - 1)]
    after = vals[t:]
    best_after = after.max() if ctx.maximizing else after.min()
    gain = rel(improvement(at, best_after, ctx), at)
    if gain >= PLATEAU_AFTER:
        return None
    return Finding(
        "lr.dropped_too_fast", "warning", "Learning rate dropped too fast",
        f"The learning rate fell to {rates[low[0]]:.3g} (from {lr0:.3g}) by {epoch_name(history, t)} "
        f"(within the first {low[0] + 1} of {len(rates)} kept epochs), and the score improved only {100 * gain:.2f}% "
        "afterwards; give the scheduler more patience.",
        {"initial_lr": lr0, "lr_at": r(rates[low[0]], 8), "epoch": history.loop_epoch(t), "pai_epoch": t,
         "epochs": len(rates), "rel_gain_after": r(gain)},
        {"train.scheduler.args.patience": scaled(ctx.scheduler_patience, 2, "x2", integer=True, minimum=2)},
    )


@rule("lr.stayed_high")
def stayed_high(history, ctx):
    """Seed: 'LR stayed high too long: training may be unstable; faster decay or a lower initial LR'. Fires when the
    LR never decreased in the final history while the last third of epochs (at least 5) swung by >= 1% per epoch;
    the swing is the movement that cancels out (mean |change| - |mean change|), so a steady rise is not a swing."""
    lr, s = history.lr, history.scores
    if len(lr) < 9 or len(s) < 9:
        return None
    rates = lr["lr"].to_numpy(dtype=float)
    if rates.min() < rates[0] * 0.999:
        return None
    tail = s["val"].to_numpy(dtype=float)[-max(5, len(s) // 3) :]
    d = np.diff(tail)
    swing_abs = float(np.mean(np.abs(d)) - abs(np.mean(d)))
    swing = rel(swing_abs, float(np.mean(tail)))
    noise = noise_of(history, ctx)
    if swing < HIGH_SWING or (noise.kind == "binomial" and swing_abs < noise.threshold(float(np.mean(tail)))):
        return None  # swings the validation set's sampling error alone explains are not instability
    return Finding(
        "lr.stayed_high", "warning", "Learning rate never decreased",
        f"The learning rate stayed at {rates[0]:.3g} for all {len(rates)} epochs while the score swung "
        f"{100 * swing:.1f}% per epoch at the end; lower it or let the scheduler decay it sooner.",
        {"lr": rates[0], "epochs": len(rates), "rel_swing_per_epoch": r(swing)},
        {"train.optimizer.args.lr": scaled(ctx.lr, 0.5, "x0.5"),
         "train.scheduler.args.patience": shifted(ctx.scheduler_patience, -1)},
    )


@rule("training.still_improving")
def still_improving(history, ctx):
    """Seed: 'training completed but scores still improving: train longer'. In 3.2.9 a completed run's history ends at
    its best epoch by construction, so this only looks at runs PerforatedAI did not complete (epoch cap, unknown).
    The last WINDOW epochs must beat everything before by 0.5% (the floor) and beyond the sampling noise."""
    if history.ended_by not in ("epoch_cap", "unknown"):
        return None
    vals, src = _val_series(history)
    if len(vals) <= WINDOW:
        return None
    recent = vals[-WINDOW:]
    before = vals[:-WINDOW]
    best_recent = recent.max() if ctx.maximizing else recent.min()
    best_before = before.max() if ctx.maximizing else before.min()
    gain = rel(improvement(best_before, best_recent, ctx), best_before)
    j = noise_of(history, ctx).diff(best_before, best_recent, ctx)
    if gain < STILL_IMPROVING or not j.beyond:
        return None  # under the floor, or inside the noise: not evidence of improvement
    return Finding(
        "training.still_improving", "warning", "Training stopped while still improving",
        f"The last {WINDOW} epochs beat everything before by {100 * gain:.2f}% when training stopped "
        f"({history.ended_by}); a longer run lets PerforatedAI finish.",
        {"rel_gain_last_epochs": r(gain), "epochs": len(vals), "source": src, "ended_by": history.ended_by},
        {"train.max_epochs": scaled(ctx.max_epochs, 2, "x2", integer=True)},
        dendrites=[history.dendrites],
    ).measured(j)


@rule("training.converged_early")
def converged_early(history, ctx):
    """Seed: 'training converged early: settings are efficient; epochs could be cut'. Fires when 40% or more of the
    epochs (real epochs from metrics.jsonl when present) came after the first epoch that is within the sampling noise
    of the best score."""
    vals, src = _val_series(history)
    if len(vals) < 8:
        return None
    top = float(vals.max() if ctx.maximizing else vals.min())
    noise = noise_of(history, ctx)
    # the first epoch within the noise of the best: later 'improvements' are not evidence of learning
    best = next(i for i, v in enumerate(vals) if not noise.diff(v, top, ctx).beyond)
    after = len(vals) - 1 - best
    if after < EARLY_SHARE * len(vals):
        return None
    loop_best = _loop_epoch(history, best, src)
    at = f"epoch {loop_best}" if loop_best is not None else f"PerforatedAI's epoch {best}"
    keep = (best if loop_best is None else loop_best) + 1 + max(2, (ctx.n_epochs_to_switch or 2))
    return Finding(
        "training.converged_early", "info", "Converged early",
        f"The best score came at {at} (of {history.total_epochs} epochs run, counted from 0); "
        f"the last {after} {'epochs' if src == 'metrics.jsonl' else 'kept epochs'} brought no improvement.",
        {"best_epoch": loop_best, "pai_epoch": None if src == "metrics.jsonl" else best, "epochs": len(vals),
         "epochs_after_best": after, "source": src},
        {"train.max_epochs": keep},
    )
