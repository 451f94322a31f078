"""Sampling error of a run's scores, so that a rule calls a difference real only beyond it.

Two sources, best first:
- binomial: an accuracy measured on n validation samples has standard error sqrt(p(1-p)/n)
  (in the score's units: x100 for percent). Used when the worker scored it with its own
  accuracy loop and recorded n (result.json extra.score).
- epoch spread: for any other metric (a loss, a user's train_fn score), the typical
  epoch-to-epoch change of the validation score where the run had settled, from the tail of
  every architecture's phase (robust and trend-free: the median absolute second difference,
  scaled to the standard deviation of one measurement).
- unknown: too few epochs to measure either; then only the analysis guide's own thresholds apply.
A difference of two scores on the same validation set has the standard error of the two
combined (independent errors: conservative, as both models share the samples). A difference
counts ("helped", "dropped", "still improving") only at Z standard errors or more.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from pai_sweep.analysis.context import RuleContext

Z = 2.0  # standard errors a difference needs to count as real (one-sided, about 97.7 %)
TAIL = 5  # epochs at the end of each phase that measure the epoch spread
MIN_SPREAD_POINTS = 4  # second differences needed before the epoch spread is trusted (else: unknown noise)


@dataclass(frozen=True)
class Judgement:
    """An effect (positive = better) measured with standard error se."""

    effect: float
    se: float

    @property
    def z(self) -> float:
        if self.se > 0:
            return self.effect / self.se
        return math.inf if self.effect > 0 else -math.inf if self.effect < 0 else 0.0

    @property
    def confidence(self) -> float:
        """P(the true effect is > 0) under a normal approximation."""
        z = self.z
        if math.isinf(z):
            return 1.0 if z > 0 else 0.0
        return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))

    @property
    def beyond(self) -> bool:
        """Better beyond the noise: at least Z standard errors (and > 0 when the noise is unknown)."""
        return self.effect > 0 and self.effect >= Z * self.se

    def evidence(self, digits: int = 4) -> dict[str, Any]:
        return {"effect": round(self.effect, digits), "se": round(self.se, digits),
                "confidence": round(self.confidence, 3), "beyond_noise": self.beyond}


@dataclass(frozen=True)
class Noise:
    """How noisy one score of this run is: se_at(score) and the difference of two scores."""

    kind: str  # binomial, epoch_spread, unknown
    samples: int | None = None  # binomial: the validation set's size
    scale: float = 100.0  # binomial: score units per unit of accuracy (100 for percent)
    spread: float = 0.0  # epoch_spread: the sd of one measurement

    def se_at(self, score: float) -> float:
        if self.kind == "binomial" and self.samples:
            n = self.samples
            p = min(max(float(score) / self.scale, 0.5 / n), 1.0 - 0.5 / n)  # never 0 at 0 % or 100 %
            return self.scale * math.sqrt(p * (1.0 - p) / n)
        return self.spread

    def diff_se(self, a: float, b: float) -> float:
        """Standard error of the difference of two scores a and b."""
        return math.hypot(self.se_at(a), self.se_at(b))

    def diff(self, a: float, b: float, ctx: RuleContext) -> Judgement:
        """How much better b is than a, with the standard error of the difference."""
        sign = 1.0 if ctx.maximizing else -1.0
        return Judgement((float(b) - float(a)) * sign, self.diff_se(a, b))

    def threshold(self, a: float, b: float | None = None) -> float:
        """The smallest difference between scores near a (and b) that counts as real."""
        return Z * self.diff_se(a, a if b is None else b)

    def describe(self) -> str:
        if self.kind == "binomial":
            return f"binomial error of an accuracy on {self.samples} validation samples"
        if self.kind == "epoch_spread":
            return f"epoch-to-epoch spread of the validation score at plateau (sd {self.spread:.4g})"
        return "unknown (too few epochs to measure it)"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "z": Z, "description": self.describe()}
        if self.kind == "binomial":
            out.update(val_samples=self.samples)
        else:
            out.update(sd=round(self.spread, 6))
        return out


def phase_table(history: Any) -> pd.DataFrame:
    """val and dendrites per epoch, dendrites being the count the score was measured with.

    metrics.jsonl (real epochs, rejected tries included) when the worker wrote it: its `dendrites`
    is the count after the epoch, so a switch epoch's score belongs to the count before it.
    Otherwise PerforatedAI's final history (Scores.csv)."""
    m = history.metrics
    if not m.empty and {"val", "dendrites"} <= set(m.columns):
        return pd.DataFrame({"val": m["val"].astype(float).to_numpy(),
                             "dendrites": m["dendrites"].shift(1, fill_value=0).astype(int).to_numpy()})
    s = history.scores
    if s.empty or "val" not in s:
        return pd.DataFrame({"val": [], "dendrites": []})
    dendrites = s["dendrites"] if "dendrites" in s else 0
    return pd.DataFrame({"val": s["val"].astype(float).to_numpy(), "dendrites": dendrites})


def epoch_spread(history: Any) -> float:
    """The sd of one validation measurement, from the last TAIL epochs of every phase; 0 when too few to tell.

    Second differences remove a steady trend (a still-rising curve is not noise): for independent
    errors of sd s they have sd s*sqrt(6), and a normal's median absolute value is 0.6745 sd."""
    second: list[float] = []
    for _, seg in phase_table(history).groupby("dendrites", sort=False):
        vals = seg["val"].to_numpy(dtype=float)[-TAIL:]
        vals = vals[np.isfinite(vals)]
        second.extend(np.abs(np.diff(vals, n=2)).tolist())
    if len(second) < MIN_SPREAD_POINTS:
        return 0.0
    return float(np.median(second)) / (0.6745 * math.sqrt(6.0))


def noise_of(history: Any, ctx: RuleContext) -> Noise:
    """The run's noise model: binomial when the validation size of an accuracy is known, else the epoch spread."""
    if ctx.val_samples and ctx.score_kind == "accuracy_percent":
        return Noise("binomial", samples=int(ctx.val_samples), scale=100.0)
    spread = epoch_spread(history)
    return Noise("epoch_spread", spread=spread) if spread > 0 else Noise("unknown")
