"""summarize: the analysis guide's Step 3 in numbers (training, performance, dendrite impact, baseline, parameters)."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pandas as pd

from pai_sweep.analysis.context import RuleContext
from pai_sweep.analysis.history import RunHistory
from pai_sweep.analysis.measures import choose_architecture, improvement, r, rel
from pai_sweep.analysis.noise import noise_of

STABILITY_EPOCHS = 5


def _phases(history: RunHistory) -> list[dict[str, Any]]:
    out = []
    pmap = dict(zip(history.params["dendrites"], history.params["params"]))
    status = dict(zip(history.best_arch[history.best_arch["status"] != "rejected"]["dendrites"],
                      history.best_arch[history.best_arch["status"] != "rejected"]["status"])) if not history.best_arch.empty else {}
    for d, seg in history.scores.groupby("dendrites"):
        # the loop's epochs (metrics.jsonl, MLflow's step) of the phase's first and last kept epoch
        out.append({"dendrites": int(d), "first_epoch": history.loop_epoch(int(seg["epoch"].min())),
                    "last_epoch": history.loop_epoch(int(seg["epoch"].max())),
                    "epochs": len(seg), "params": r(pmap.get(d)), "status": status.get(d, "kept"),
                    "best_val": r(float(seg["val"].max())), "last_val": r(float(seg["val"].iloc[-1]))})
    return out


def _restructures(history: RunHistory) -> list[int]:
    """Real epochs where the model was restructured: switches, and rejected tries that were retried."""
    ev = history.events
    if ev.empty:
        return []
    last = int(ev["epoch"].max())
    keep = (ev["kind"] == "switch") | ((ev["kind"] == "rejected") & (ev["epoch"] < last))
    return [int(e) for e in ev[keep]["epoch"]]


def summarize(history: RunHistory, context: RuleContext | None = None) -> dict[str, Any]:
    ctx = (context or RuleContext()).merged(history.context())
    s = history.scores
    choice = choose_architecture(history, ctx)
    out: dict[str, Any] = {
        "save_name": history.save_name, "format": history.format, "ended_by": history.ended_by,
        "epochs": history.total_epochs, "kept_epochs": len(s), "maximizing": ctx.maximizing,
        "dendrites": history.dendrites, "rejected_tries": len(history.rejected),
        "switch_epochs": history.switch_epochs,
        "restructure_epochs": _restructures(history),
        "phases": _phases(history) if not s.empty else [],
        "choice": dataclasses.asdict(choice), "missing": list(history.missing),
    }
    noise = noise_of(history, ctx)
    out["noise"] = noise.to_dict()
    acc = history.accepted
    if not s.empty:
        vals = s["val"].to_numpy(dtype=float)
        best_i = int(vals.argmax() if ctx.maximizing else vals.argmin())
        final = float(acc["val"].iloc[-1]) if not acc.empty else vals[best_i]
        gain = improvement(vals[0], final, ctx)
        tail = vals[-STABILITY_EPOCHS:]
        out.update({
            "initial_score": r(vals[0]), "final_score": r(final), "best_score": r(vals[best_i]),
            "best_epoch": history.loop_epoch(best_i),
            "improvement": r(gain), "improvement_pct": r(100 * rel(gain, vals[0]), 3),
            "stability": {"epochs": len(tail), "std": r(float(np.std(tail))),
                          "mean_abs_change": r(float(np.mean(np.abs(np.diff(tail)))) if len(tail) > 1 else 0.0)},
        })
    if not acc.empty:
        v0, p0 = float(acc["val"].iloc[0]), acc["params"].iloc[0]
        vn, pn = float(acc["val"].iloc[-1]), acc["params"].iloc[-1]
        out["no_dendrite_score"] = r(v0)
        out["dendrite_gain"] = r(improvement(v0, vn, ctx))
        j = noise.diff(v0, vn, ctx)
        out["dendrite_gain_se"], out["dendrite_gain_beyond_noise"] = r(j.se), j.beyond
        out["per_dendrite_gain"] = {int(d): r(improvement(a, b, ctx)) for d, a, b in
                                    zip(acc["dendrites"].iloc[1:], acc["val"].iloc[:-1], acc["val"].iloc[1:])}
        if pd.notna(p0) and pd.notna(pn):
            out["params"] = {"base": int(p0), "final": int(pn), "growth_pct": r(100 * rel(int(pn) - int(p0), int(p0)), 2),
                             "by_dendrites": {int(d): int(p) for d, p in zip(acc["dendrites"], acc["params"]) if pd.notna(p)}}
    if ctx.baseline_score is not None and "final_score" in out:
        out["baseline"] = {"score": ctx.baseline_score, "params": ctx.baseline_params,
                           "difference": r(improvement(ctx.baseline_score, out["final_score"], ctx))}
    if not history.lr.empty:
        rates = history.lr["lr"].to_numpy(dtype=float)
        out["lr"] = {"initial": float(rates[0]), "final": float(rates[-1]),
                     "reductions": int(np.sum(np.diff(rates) < -1e-15))}
    return out
