"""choose_architecture: the dendrite count the diminishing-returns rule picks among accepted architectures."""

from __future__ import annotations

import math
from dataclasses import dataclass

from pai_sweep.analysis.context import RuleContext
from pai_sweep.analysis.history import RunHistory
from pai_sweep.analysis.measures import optimal_count


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
