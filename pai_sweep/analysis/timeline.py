"""Replay PerforatedAI's snapshots into a timeline on the real epoch count, and decide how the run ended."""

from __future__ import annotations

import pandas as pd

from pai_sweep.analysis.history import IN_PROGRESS, KEPT, RunHistory


def replay(hist: RunHistory, raw_switch: list[int]) -> tuple[pd.DataFrame, list[tuple[int, int]]]:
    """Replay the snapshots to place every restructure on the real epoch count (discarded epochs included): the
    events, and the anchors: (a final-history epoch, the real epoch it was run at) for the
    first epoch after each rollback, so final-history epoch p was run at real epoch q + (p - a) for the last
    anchor (a, q) with a <= p (each stretch of the final history was written by the last run that reached it)."""
    lists = [raw_switch] + [s.switch_epochs for s in hist.snapshots]
    real, kept, rows, anchors = 0, 0, [], [(0, 0)]
    for snap in hist.snapshots:
        n = len(snap.scores)
        real += max(0, n - kept)
        arch = snap.best_arch
        if snap.kind == "before_switch":
            k = snap.index or 0
            epoch = next((lst[k] for lst in lists if len(lst) > k), None)
            if epoch is None and n > kept:  # not recorded anywhere: the best epoch of the segment
                seg = snap.scores.iloc[kept:]
                epoch = int(seg.loc[seg["val"].idxmax(), "epoch"])
            rows.append({"epoch": real - 1, "kind": "switch", "dendrites": len(arch),
                         "params": _params_for(hist, len(arch)), "val": None})
            kept = (epoch if epoch is not None else n - 1) + 1
        elif snap.kind == "rejected":
            last = arch.iloc[-1] if not arch.empty else None
            rows.append({"epoch": real - 1, "kind": "rejected", "dendrites": max(len(arch) - 1, 0),
                         "params": None if last is None or pd.isna(last["params"]) else int(last["params"]),
                         "val": None if last is None else float(last["val"])})
            kept = (snap.switch_epochs[-1] + 1) if snap.switch_epochs else n
        else:
            rows.append({"epoch": real - 1, "kind": "before_final", "dendrites": max(len(arch) - 1, 0),
                         "params": None, "val": None})
            kept = n
        anchors.append((kept, real))
    real += max(0, len(hist.scores) - kept)
    if real > 0:
        best = hist.best_arch[hist.best_arch["accepted"]] if not hist.best_arch.empty else hist.best_arch
        rows.append({"epoch": real - 1, "kind": "end", "dendrites": int(best["dendrites"].max()) if not best.empty else 0,
                     "params": _params_for(hist, int(best["dendrites"].max()) if not best.empty else 0),
                     "val": float(best["val"].max()) if not best.empty else None})
    return pd.DataFrame(rows, columns=["epoch", "kind", "dendrites", "params", "val"]), anchors


def _params_for(hist: RunHistory, dendrites: int):
    row = hist.params[hist.params["dendrites"] == dendrites]
    if not row.empty:
        return int(row["params"].iloc[0])
    for snap in hist.snapshots:
        if len(snap.param_counts) > 2 * dendrites:
            return int(snap.param_counts[2 * dendrites])
    return None


def ended_by(hist: RunHistory) -> str:
    cfg = hist.pai_config or {}
    if cfg.get("testing_dendrite_capacity"):
        return "capacity_test"
    if any(s.kind == "before_final" for s in hist.snapshots):
        return "max_dendrites"
    ev = hist.events
    if not ev.empty and len(ev) >= 2 and ev.iloc[-2]["kind"] == "rejected" and ev.iloc[-2]["epoch"] == ev.iloc[-1]["epoch"]:
        return "tries_exhausted"  # no epoch after the last rejected try: PerforatedAI completed
    seg_lengths = hist.scores.groupby("dendrites").size().tolist() if not hist.scores.empty else []
    if hist.dendrites == 3 and seg_lengths and all(n == 1 for n in seg_lengths):
        return "capacity_test"  # a dendrite every epoch, complete after 3: the library's smoke test
    return "unknown"


def mark_in_progress(hist: RunHistory) -> bool:
    """The last kept architecture that is not better than the one before, in a run that did not complete, is undecided."""
    if hist.ended_by not in ("unknown", "epoch_cap", "failed", "pruned"):
        return False
    acc = hist.accepted
    if len(acc) < 2:
        return False
    maximizing = hist.context().maximizing
    last, prev = float(acc["val"].iloc[-1]), float(acc["val"].iloc[-2])
    better = last > prev if maximizing else last < prev
    if not better:
        idx = hist.best_arch.index[(hist.best_arch["status"] == KEPT) & (hist.best_arch["dendrites"] == acc["dendrites"].iloc[-1])]
        hist.best_arch.loc[idx, "accepted"] = False
        hist.best_arch.loc[idx, "status"] = IN_PROGRESS
    return not better
