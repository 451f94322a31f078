"""Module-level PB correlation scores (only with Perforated Backpropagation; the open 3.2.9 writes a header only)."""

from __future__ import annotations

from pai_sweep.analysis.findings import Finding
from pai_sweep.analysis.measures import r
from pai_sweep.analysis.rules import rule

LOW, HIGH = 0.01, 0.02  # the analysis guide: < 0.01 poorly aligned, > 0.02 well aligned


def _module_scores(history):
    pb = history.pb_scores
    if pb.empty or len(pb.columns) < 2:
        return {}
    return {c: float(pb[c].dropna().iloc[-1]) for c in pb.columns if c != "epoch" and pb[c].notna().any()}


@rule("modules.low_pb_scores")
def low_pb_scores(history, ctx):
    """Seed: modules with low correlation scores do not benefit from dendrites: track them instead of perforating.
    The analysis guide also names 0.3 as 'low'; its own scale (good > 0.02, poor < 0.01) is used here."""
    scores = _module_scores(history)
    low = sorted(m for m, v in scores.items() if v < LOW)
    if not low or len(low) == len(scores):
        return None if not low else _all_low(scores)
    ids = list(ctx.module_ids_to_track or []) + [m for m in low if m not in (ctx.module_ids_to_track or [])]
    return Finding(
        "modules.low_pb_scores", "warning", f"{len(low)} module(s) with low PB scores",
        f"Modules {', '.join(low)} have PB correlation below {LOW}: their dendrites add parameters without "
        "following the error signal; track them instead.",
        {"scores": {m: r(v, 5) for m, v in scores.items()}, "low": low},
        {"dendrites.module_ids_to_track": ids},
    )


def _all_low(scores):
    return Finding(
        "modules.low_pb_scores", "warning", "Every module has low PB scores",
        f"All {len(scores)} modules have PB correlation below {LOW}; dendrites are poorly aligned everywhere.",
        {"scores": {m: r(v, 5) for m, v in scores.items()}}, {},
    )


@rule("modules.high_pb_scores")
def high_pb_scores(history, ctx):
    """Seed: all modules above 0.02: the module selection works; consider converting more layer types."""
    scores = _module_scores(history)
    if not scores or min(scores.values()) <= HIGH:
        return None
    return Finding(
        "modules.high_pb_scores", "info", "Every module has high PB scores",
        f"All {len(scores)} modules have PB correlation above {HIGH}: the selection works; "
        "converting more layer types may help further.",
        {"scores": {m: r(v, 5) for m, v in scores.items()}}, {},
    )
