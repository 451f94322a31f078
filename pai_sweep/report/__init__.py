"""The sweep report (`pai-sweep report SWEEP_DIR`, also written at the end of every sweep) and
the comparison of several sweeps (`pai-sweep compare`).

write_sweep_report(sweep_dir) -> report dir holding report.md, report.html, report.json
(every number the report shows) and PNG plots: the Pareto front of objective vs parameters
with the baseline marked, the objective per trial, parameter importances.
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from pathlib import Path
from typing import Any

from pai_sweep.errors import SweepError
from pai_sweep.report import plots
from pai_sweep.report.data import (
    SweepData,
    TrialRow,
    baseline_match,
    best_so_far,
    findings_summary,
    front_groups,
    importances,
    load_sweep,
    open_study,
    pareto_front,
    rules_vs_sampler,
    sorted_rows,
)
from pai_sweep.report.render import Doc, fmt
from pai_sweep.trial_files import atomic_write_text, write_json

__all__ = ["SweepData", "TrialRow", "compare_sweeps", "load_sweep", "pareto_front", "write_sweep_report"]

REPORT_DIR = "report"


def _row_json(row: TrialRow) -> dict[str, Any]:
    return {**dataclasses.asdict(row), "rule": row.rule}


def _point(row: TrialRow) -> dict[str, Any]:
    return {"trial": row.number, "origin": row.origin, "objective": row.objective, "params": row.params}


REASON_CHARS = 60  # longer reasons are cut in the tables (report.json keeps them whole)


KEY_ABBREVIATIONS = {"candidate_weight_initialization_multiplier": "init multiplier"}


def short_keys(keys: list[str]) -> list[str]:
    """Column names for searched keys: the last part of each (dendrites.max_dendrites -> max_dendrites), the whole
    key where two share a last part; the longest knob names abbreviated (the table stays readable at 1,400 px)."""
    last = [k.rsplit(".", 1)[-1] for k in keys]
    return [KEY_ABBREVIATIONS.get(t, t) if last.count(t) == 1 else k for k, t in zip(keys, last)]


def shorten(text: str | None, limit: int = REASON_CHARS) -> str | None:
    if text is None or len(text) <= limit:
        return text
    return text[: limit - 3].rstrip() + "..."


def _dendrite_verdict(sweep_dir: Path) -> str | None:
    """The sweep's own verdict (summary.json, written by the driver): helped beyond the noise, at matched plateaus."""
    try:
        return str(json.loads((sweep_dir / "summary.json").read_text())["dendrites"]["text"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def report_data(sweep_dir: Path) -> dict[str, Any]:
    """Everything the report shows, as plain data (also written as report.json)."""
    study = open_study(Path(sweep_dir))
    data = load_sweep(Path(sweep_dir), study)
    found, note = importances(data, study)
    base = data.baseline()
    return {
        "sweep": data.name,
        "sweep_dir": data.sweep_dir,
        "objective": data.objective_name,
        "directions": data.directions,
        "search_keys": data.search_keys,
        "trials": [_row_json(r) for r in sorted_rows(data)],
        "pareto": [_point(r) for r in pareto_front(data)],
        "baseline": _point(base) if base else None,
        "baseline_match": baseline_match(data),
        "best_so_far": best_so_far(data),
        "findings": findings_summary(data),
        "rules_vs_sampler": rules_vs_sampler(data),
        "dendrites": _dendrite_verdict(Path(sweep_dir)),
        "importances": found,
        "importances_note": note,
        "_data": data,
    }


def write_sweep_report(sweep_dir: Path, out_dir: Path | None = None) -> Path:
    """Write report.md, report.html, report.json and the plots; the report folder (default <sweep_dir>/report)."""
    sweep_dir = Path(sweep_dir)
    rep = report_data(sweep_dir)  # first: a wrong folder fails before anything is created
    out = Path(out_dir) if out_dir else sweep_dir / REPORT_DIR
    out.mkdir(parents=True, exist_ok=True)
    data: SweepData = rep.pop("_data")
    images = [plots.pareto_plot(data, out / "pareto.png").name, plots.progress_plot(data, out / "progress.png").name]
    if rep["importances"]:
        images.append(plots.importance_plot(rep["importances"], out / "importances.png").name)
    rep["plots"] = images
    doc = _document(data, rep)
    atomic_write_text(out / "report.md", doc.markdown())
    atomic_write_text(out / "report.html", doc.html(out))
    write_json(out / "report.json", rep)
    return out


def _document(data: SweepData, rep: dict[str, Any]) -> Doc:
    doc = Doc(f"Sweep report: {data.name}")
    states = Counter(r.state.lower() for r in data.rows)
    origins = Counter("rule" if r.rule else r.origin for r in data.rows)
    started = [r for r in data.rows if r.started]
    lines = [f"{len(data.rows)} trials: " + ", ".join(f"{n} {s}" for s, n in sorted(states.items())),
             "by origin: " + ", ".join(f"{n} {o}" for o, n in sorted(origins.items())),
             *([f"started from another trial's state (branching, continuing): {len(started)}"] if started else []),
             f"objective: {data.objective_name} ({', '.join(data.directions)})"]
    ranked = [r for r in sorted_rows(data) if r in data.done()]
    if ranked:
        b = ranked[0]
        lines.append(f"best: trial {b.number} ({b.origin}), objective {fmt(b.objective)}, {fmt(b.params)} parameters, {fmt(b.dendrites)} dendrites")
    base = data.baseline()
    if base:
        lines.append(f"baseline: trial {base.number}, objective {fmt(base.objective)}, {fmt(base.params)} parameters")
    match = rep["baseline_match"]
    if match and match["trial"] is not None:
        lines.append(f"matches the baseline within {fmt(match['tolerance'])}: trial {match['trial']}, score {fmt(match['score'])} "
                     f"with {fmt(match['params'])} parameters ({match['params_saved']:.0%} fewer than the baseline)")
    elif match:
        lines.append(f"no trial matches the baseline's score {fmt(match['baseline_score'])} within {fmt(match['tolerance'])} yet")
    doc.bullets(lines)

    doc.h("Score vs parameters")
    doc.image("pareto.png", "Pareto front")
    groups = front_groups(pareto_front(data))
    doc.p(f"{len(groups)} point(s) on the Pareto front (no other trial has a better objective with fewer parameters; "
          "trials that reached the same point share a row):")
    doc.table(["trial(s)", "origin", "objective", "test", "parameters"],
              [[", ".join(str(r.number) for r in g), ", ".join(sorted({r.origin for r in g})), g[0].objective,
                g[0].test, g[0].params] for g in groups])
    doc.image("progress.png", "objective per trial")

    doc.h("Trials, best first")
    keys = data.search_keys
    headers = ["rank", "trial", "origin", "started", "state", "objective", "val", "test", "parameters", "dendrites",
               *short_keys(keys), "reason"]
    rows = []
    for i, r in enumerate(sorted_rows(data), 1):
        rank = i if r in data.done() else ""
        origin = f"{r.origin} ({r.design.replace('_', ' ')})" if r.design else r.origin
        rows.append([rank, r.number, origin, r.started or "", r.state.lower(), r.objective, r.score, r.test, r.params,
                     r.dendrites, *[r.search.get(k) for k in keys], shorten(r.reason)])
    doc.p("Trials are ranked and chosen on the validation score; the test score of the same architecture is shown beside "
          "it. Searched keys are named by their last part where that is unambiguous, and long reasons are cut; "
          "report.json has both whole.")
    doc.table(headers, rows)
    verdict = rep.get("dendrites")
    if verdict:
        doc.h("Did dendrites help?")
        doc.p(verdict)

    doc.h("Findings that fired most often")
    if rep["findings"]:
        doc.table(["rule", "trials", "severity"], [[f["rule_id"], f"{f['trials']} of {f['of_analysed']}",
                   ", ".join(f"{k} {v}" for k, v in sorted(f["severity"].items()))] for f in rep["findings"]])
    else:
        doc.p("No trial folder has analysis/findings.json yet.")

    doc.h("Rule-guided trials vs the sampler")
    if rep["rules_vs_sampler"]:
        doc.table(["trial", "rule", "objective", "sampler best then", "beat it", "sampler best overall", "beat it"],
                  [[x["trial"], x["rule"], x["objective"], x["sampler_best_then"], x["beat_then"], x["sampler_best"], x["beat_overall"]]
                   for x in rep["rules_vs_sampler"]])
    else:
        doc.p("No rule-enqueued trial has finished.")

    doc.h("Parameter importances")
    if rep["importances"]:
        doc.table(["parameter", "importance"], [[k, v] for k, v in rep["importances"].items()])
        doc.image("importances.png", "parameter importances")
    else:
        doc.p(f"Not shown: {rep['importances_note']}.")
    return doc


def compare_sweeps(sweep_dirs: list[Path], out_dir: Path | None = None) -> Path:
    """Two or more sweeps on the same axes (best objective vs trials used; Pareto fronts); the output folder."""
    if len(sweep_dirs) < 2:
        raise SweepError("compare needs two or more sweep folders, e.g. pai-sweep compare sweeps/guided sweeps/plain")
    sweeps = [load_sweep(Path(d)) for d in sweep_dirs]
    names = [s.name for s in sweeps]
    for s, d in zip(sweeps, sweep_dirs):
        if names.count(s.name) > 1:  # same sweep name in two folders: tell them apart by folder
            s.name = f"{s.name} ({Path(d).name})" if Path(d).name != s.name else str(d)
    if len({tuple(s.directions[:1]) for s in sweeps}) > 1:
        raise SweepError("these sweeps optimise in opposite directions (maximize vs minimize): their objectives cannot share axes")
    out = Path(out_dir) if out_dir else Path(sweep_dirs[0]).parent / ("compare-" + "-vs-".join(Path(d).name for d in sweep_dirs))
    out.mkdir(parents=True, exist_ok=True)
    images = [p.name for p in plots.compare_plots(sweeps, out)]
    summary = []
    for s in sweeps:
        curve = [p for p in best_so_far(s) if p["best"] is not None]
        best = curve[-1]["best"] if curve else None
        summary.append({"sweep": s.name, "sweep_dir": s.sweep_dir, "trials": len(s.rows),
                        "trials_used": best_so_far(s)[-1]["trials_used"] if s.rows else 0, "best": best,
                        "trials_to_best": next((p["trials_used"] for p in curve if p["best"] == best), None),
                        "pareto": [_point(r) for r in pareto_front(s)], "best_so_far": best_so_far(s)})
    doc = Doc("Sweep comparison: " + " vs ".join(s.name for s in sweeps))
    doc.table(["sweep", "trials", "trials used", "best objective", "trials used to reach it", "Pareto points"],
              [[x["sweep"], x["trials"], x["trials_used"], x["best"], x["trials_to_best"], len(x["pareto"])] for x in summary])
    doc.image("best_vs_trials.png", "best objective vs trials used")
    doc.image("pareto.png", "Pareto fronts")
    atomic_write_text(out / "compare.md", doc.markdown())
    atomic_write_text(out / "compare.html", doc.html(out))
    write_json(out / "compare.json", {"sweeps": summary, "plots": images})
    return out
