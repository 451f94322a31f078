"""analyze(path): read, run the rules, summarize, choose; write_outputs: findings.json, report.md, plots."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pai_sweep.analysis.measures import ArchitectureChoice, choose_architecture
from pai_sweep.analysis.context import RuleContext
from pai_sweep.analysis.findings import SCHEMA_VERSION, Finding
from pai_sweep.analysis.history import RunHistory
from pai_sweep.analysis.plots import write_plots
from pai_sweep.analysis.reader import read_history
from pai_sweep.analysis.report import render
from pai_sweep.analysis.rules import run_rules
from pai_sweep.analysis.summary import summarize
from pai_sweep.errors import AnalysisError
from pai_sweep.trial_files import atomic_write_text, jsonable

FINDINGS_JSON = "findings.json"
REPORT_MD = "report.md"
OUT_DIR = "analysis"


@dataclass
class Analysis:
    history: RunHistory
    findings: list[Finding]
    summary: dict[str, Any]
    choice: ArchitectureChoice
    context: RuleContext


def analyze(path, context: RuleContext | None = None, out_dir=None, save_name: str | None = None) -> Analysis:
    history = read_history(path, save_name=save_name)
    ctx = (context or RuleContext()).merged(history.context())
    result = Analysis(history, run_rules(history, ctx), summarize(history, ctx), choose_architecture(history, ctx), ctx)
    if out_dir is not None:
        write_outputs(result, out_dir)
    return result


def findings_document(analysis: Analysis) -> dict[str, Any]:
    h = analysis.history
    return jsonable({
        "schema_version": SCHEMA_VERSION,
        "source": {"folder": str(h.folder), "save_name": h.save_name, "format": h.format,
                   "trial_dir": str(h.trial_dir) if h.trial_dir else None},
        "summary": analysis.summary,
        "choice": analysis.choice,
        "architectures": h.best_arch.astype(object).to_dict("records"),
        "findings": [f.to_dict() for f in analysis.findings],
    })


def default_out_dir(path) -> Path:
    return Path(path) / OUT_DIR


def write_outputs(analysis: Analysis, out_dir) -> list[Path]:
    """findings.json, report.md and the plots in out_dir; AnalysisError when it cannot be written."""
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        plots = write_plots(analysis.history, out_dir)
        atomic_write_text(out_dir / FINDINGS_JSON, json.dumps(findings_document(analysis), indent=2) + "\n")
        atomic_write_text(out_dir / REPORT_MD, render(analysis, markdown=True, plots=[p.name for p in plots]))
    except OSError as exc:
        raise AnalysisError(f"{out_dir}: cannot write the analysis there ({exc.strerror}); choose another folder with --out") from None
    return [out_dir / FINDINGS_JSON, out_dir / REPORT_MD, *plots]
