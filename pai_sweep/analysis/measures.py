"""Numbers several rules share: gains per architecture, the 'worth it' threshold, switch windows, noise; and
choose_architecture, the dendrite count the diminishing-returns rule picks among accepted architectures."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from pai_sweep.analysis.context import RuleContext
from pai_sweep.analysis.history import RunHistory
from pai_sweep.analysis.noise import Judgement, Noise, noise_of, phase_table

WORTH_SHARE = 0.25  # a dendrite is worth keeping if it gives >= 25% of the best single dendrite's gain...
WORTH_FLOOR = 0.001  # ...and at least 0.1% of the baseline score (relative)
WINDOW = 3  # epochs looked at before / after a switch


def sign(ctx: RuleContext) -> float:
    return 1.0 if ctx.maximizing else -1.0


def improvement(a: float, b: float, ctx: RuleContext) -> float:
    """How much better b is than a (negative when worse), whatever the score's direction."""
    return (b - a) * sign(ctx)


def rel(x: float, base: float) -> float:
    return x / abs(base) if base else math.inf if x else 0.0


def arch_gains(history: RunHistory, ctx: RuleContext) -> pd.DataFrame:
    """Accepted architectures with gain (vs the previous count) and cumulative gain (vs no dendrites)."""
    acc = history.accepted[["dendrites", "params", "val"]].copy()
    if acc.empty:
        return acc.assign(gain=[], total=[])
    vals = acc["val"].to_numpy(dtype=float)
    acc["gain"] = [0.0] + [improvement(vals[i - 1], vals[i], ctx) for i in range(1, len(vals))]
    acc["total"] = [improvement(vals[0], v, ctx) for v in vals]
    return acc.reset_index(drop=True)


def worth_threshold(gains: pd.DataFrame, noise: Noise | None = None) -> float:
    """The smallest gain that counts as a real improvement for this run: the analysis guide's share of the best
    single gain and 0.1% of the baseline score are floors; the sampling error of a difference raises it."""
    if gains.empty:
        return 0.0
    best = max([g for g in gains["gain"].iloc[1:] if g > 0], default=0.0)
    floor = max(WORTH_SHARE * best, WORTH_FLOOR * abs(float(gains["val"].iloc[0])), 1e-12)
    if noise is None:
        return floor
    return max(floor, noise.threshold(float(gains["val"].iloc[0]), float(gains["val"].iloc[-1])))


def optimal_count(history: RunHistory, ctx: RuleContext) -> tuple[int, pd.DataFrame, float]:
    """Diminishing returns: the smallest dendrite count after which all further gains add up to less than the threshold."""
    gains = arch_gains(history, ctx)
    if gains.empty:
        return 0, gains, 0.0
    threshold = worth_threshold(gains, noise_of(history, ctx))
    g = gains["gain"].to_numpy()
    for k in range(len(g)):
        if g[k + 1 :].sum() < threshold:
            return int(gains["dendrites"].iloc[k]), gains, threshold
    return int(gains["dendrites"].iloc[-1]), gains, threshold


def gain_judgement(history: RunHistory, ctx: RuleContext, frm: int, to: int) -> Judgement | None:
    """The gain from the accepted architecture with `frm` dendrites to the one with `to`, with its standard error."""
    acc = history.accepted
    vals = dict(zip(acc["dendrites"].astype(int), acc["val"].astype(float))) if not acc.empty else {}
    if frm not in vals or to not in vals:
        return None
    return noise_of(history, ctx).diff(vals[frm], vals[to], ctx)


def phase_series(history: RunHistory, dendrites: int) -> np.ndarray:
    """Validation scores of every epoch measured with `dendrites` dendrites (real epochs when recorded)."""
    table = phase_table(history)
    vals = table[table["dendrites"] == dendrites]["val"].to_numpy(dtype=float)
    return vals[np.isfinite(vals)]


def plateau(history: RunHistory, ctx: RuleContext, dendrites: int, window: int = WINDOW) -> tuple[bool, Judgement | None]:
    """Had the phase with `dendrites` dendrites plateaued? The trend of its last 2 x window epochs (a least-squares
    slope, its standard error from the scatter around the line) projected over `window` more epochs must not be a
    rise beyond noise.Z standard errors that is also larger than one score's own sampling error. A phase shorter
    than 2 x window epochs cannot tell: not plateaued.

    The scatter around the trend, not the binomial error, is the noise here: consecutive epochs are scored on the
    same validation samples, so what varies between them is the model, and a slow steady rise is still a rise."""
    vals = phase_series(history, dendrites)
    if len(vals) < 2 * window:
        return False, None
    y = vals[-2 * window:]
    x = np.arange(len(y), dtype=float)
    sxx = float(np.sum((x - x.mean()) ** 2))
    slope = float(np.sum((x - x.mean()) * (y - y.mean())) / sxx)
    resid = y - (y.mean() + slope * (x - x.mean()))
    s = math.sqrt(float(np.sum(resid**2)) / max(1, len(y) - 2))
    sign = 1.0 if ctx.maximizing else -1.0
    j = Judgement(sign * slope * window, s / math.sqrt(sxx) * window)
    material = j.effect >= noise_of(history, ctx).se_at(float(y[-1]))  # a rise under one score's own error changes no value
    return not (j.beyond and material), j


def noise(values: np.ndarray) -> float:
    """Typical epoch-to-epoch change (median absolute difference)."""
    if len(values) < 2:
        return 0.0
    return float(np.median(np.abs(np.diff(values))))


def switch_windows(history: RunHistory, ctx: RuleContext, window: int = WINDOW) -> list[dict[str, Any]]:
    """For each switch in the final history: scores just before and after it, and the drop after it."""
    out = []
    s = history.scores
    if s.empty:
        return out
    vals = dict(zip(s["epoch"].astype(int), s["val"].astype(float)))
    for _, sw in history.switches.iterrows():
        e, d = int(sw["epoch"]), int(sw["dendrites"])
        if e not in vals:
            continue
        prev_seg = s[(s["dendrites"] == d - 1)]
        before = prev_seg[prev_seg["epoch"] <= e]["val"].to_numpy(dtype=float)
        after = s[(s["epoch"] > e) & (s["epoch"] <= e + window)]["val"].to_numpy(dtype=float)
        base = vals[e]
        worst_after = (after.min() if ctx.maximizing else after.max()) if len(after) else math.nan
        drop = max(0.0, -improvement(base, worst_after, ctx)) if len(after) else math.nan
        recent = improvement(before[-window - 1], base, ctx) if len(before) > window else math.nan
        out.append({
            "dendrites": d, "epoch": e, "score_at_switch": base, "worst_after": worst_after,
            "drop": drop, "rel_drop": rel(drop, base) if len(after) else math.nan,
            "noise_before": noise(before[-2 * window :]),
            "score_before_window": float(before[-window - 1]) if len(before) > window else math.nan,
            "gain_last_epochs": recent, "rel_gain_last_epochs": rel(recent, before[-window - 1]) if len(before) > window else math.nan,
            "segment_gain": improvement(before[0], base, ctx) if len(before) else math.nan,
            "segment_epochs": len(before), "epochs_after": len(after),
        })
    return out


def epoch_name(history: RunHistory, pai_epoch: int) -> str:
    """'epoch 12', numbered as the training loop counts (metrics.jsonl, MLflow's step), or "PerforatedAI's
    epoch 9" (its renumbered final history) when the loop's epoch cannot be placed."""
    loop = history.loop_epoch(pai_epoch)
    return f"epoch {loop}" if loop is not None else f"PerforatedAI's epoch {int(pai_epoch)}"


def switch_name(history: RunHistory, pai_epoch: int) -> str:
    """The switch whose old architecture ends at final-history epoch `pai_epoch`, in the loop's numbering:
    'the switch at epoch 9' (the epoch the model was restructured at), else 'the switch after PerforatedAI's
    epoch 7'."""
    loop = history.switch_loop_epoch(pai_epoch)
    return f"the switch at epoch {loop}" if loop is not None else f"the switch after PerforatedAI's epoch {int(pai_epoch)}"


def scaled(current: Any, factor: float, relative: str, *, integer: bool = False, minimum: float | None = None) -> Any:
    """An absolute recommendation from the current value (numbers and lists), else the relative string."""
    if current is None:
        return relative

    def one(v):
        x = v * factor
        if minimum is not None:
            x = max(x, minimum)
        return int(round(x)) if integer else float(f"{x:.6g}")

    if isinstance(current, (list, tuple)):
        return [one(v) for v in current]
    return one(current)


def shifted(current: Any, delta: int, *, minimum: int = 1) -> Any:
    return f"{delta:+d}" if current is None else max(minimum, int(current) + delta)


def r(x: Any, digits: int = 4) -> Any:
    """Round for evidence (keeps JSON short and readable)."""
    if isinstance(x, (float, np.floating)):
        return None if math.isnan(x) else round(float(x), digits)
    if isinstance(x, np.integer):
        return int(x)
    return x


# ---------------------------------------------------------------- the architecture to keep


@dataclass
class ArchitectureChoice:
    dendrites: int
    val: float | None
    test: float | None
    params: int | None
    reason: str


def _num(x) -> float | None:
    try:
        x = float(x)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(x) else x


def choose_architecture(history: RunHistory, context: RuleContext | None = None) -> ArchitectureChoice:
    """The smallest accepted dendrite count after which further dendrites add less than the worth threshold."""
    ctx = (context or RuleContext()).merged(history.context())
    acc = history.accepted
    if acc.empty:
        s = history.scores
        if s.empty:
            return ArchitectureChoice(0, None, None, None, "no architecture recorded (no epochs)")
        best = s["val"].max() if ctx.maximizing else s["val"].min()
        p = history.params[history.params["dendrites"] == 0]["params"]
        return ArchitectureChoice(0, _num(best), None, int(p.iloc[0]) if not p.empty else None,
                                  "no architecture table: the best epoch of the base model")
    k, gains, threshold = optimal_count(history, ctx)
    row = acc[acc["dendrites"] == k].iloc[0]
    test_col = history.extra_name("test") or ("Test" if "Test" in acc.columns else None)
    n = int(acc["dendrites"].max())
    if k == n:
        reason = f"every accepted dendrite added at least {threshold:.4g}" if n else "no dendrite was accepted"
    else:
        reason = f"dendrites after {k} added less than {threshold:.4g} in total"
    params = row["params"]
    return ArchitectureChoice(
        dendrites=int(k),
        val=_num(row["val"]),
        test=_num(row[test_col]) if test_col and test_col in row else None,
        params=int(params) if _num(params) is not None else None,
        reason=reason,
    )
