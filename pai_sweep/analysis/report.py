"""The readable report: markdown (report.md) and plain console text from the same lines."""

from __future__ import annotations

from typing import Any

import pandas as pd

SEVERITY_MARK = {"problem": "PROBLEM", "warning": "warning", "info": "info"}


def _fmt(x: Any) -> str:
    if isinstance(x, float):
        return f"{x:.4g}"
    return "-" if x is None else str(x)


def _arch_rows(history) -> list[list[str]]:
    rows = []
    extras = [c for c in history.best_arch.columns if c not in ("dendrites", "params", "val", "accepted", "status", "source")]
    for _, a in history.best_arch.sort_values(["dendrites", "accepted"], ascending=[True, False]).iterrows():
        rows.append([str(int(a["dendrites"])), _fmt(None if pd.isna(a["params"]) else int(a["params"])),
                     _fmt(float(a["val"])), *[_fmt(float(a[c])) for c in extras], a["status"]])
    return [["dendrites", "params", "val", *extras, "status"], *rows]


def _table(rows: list[list[str]], markdown: bool) -> list[str]:
    if markdown:
        head, *body = rows
        return ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)] + ["| " + " | ".join(r) + " |" for r in body]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows]


def render(analysis, markdown: bool = True, plots: list[str] | None = None) -> str:
    h, s, c = analysis.history, analysis.summary, analysis.choice
    h1, h2 = ("# ", "## ") if markdown else ("", "")
    out = [f"{h1}PerforatedAI run '{h.save_name}' ({h.trial_dir or h.folder})", ""]
    facts = [
        ("epochs run", f"{s['epochs']} ({s['kept_epochs']} in PerforatedAI's final history)"),
        ("ended by", s["ended_by"]),
        ("dendrites kept", f"{s['dendrites']} (rejected tries: {s['rejected_tries']})"),
        ("restructures at epochs", ", ".join(map(str, s["restructure_epochs"])) or "none"),
        ("score", f"{_fmt(s.get('initial_score'))} -> {_fmt(s.get('final_score'))} "
                  f"({_fmt(s.get('improvement_pct'))}%), best {_fmt(s.get('best_score'))}"),
    ]
    if "params" in s:
        p = s["params"]
        facts.append(("parameters", f"{p['base']} -> {p['final']} (+{_fmt(p['growth_pct'])}%)"))
    if "baseline" in s:
        facts.append(("vs baseline", f"{_fmt(s['baseline']['difference'])} ({_fmt(s['baseline']['score'])})"))
    if "noise" in s:
        facts.append(("noise", f"{s['noise']['description']}; a difference counts at {s['noise']['z']:g} standard errors"))
    if "dendrite_gain_se" in s:
        verdict = "beyond the noise" if s.get("dendrite_gain_beyond_noise") else "inside the noise"
        facts.append(("dendrite gain", f"{_fmt(s.get('dendrite_gain'))} +/- {_fmt(s['dendrite_gain_se'])} ({verdict})"))
    facts.append(("chosen architecture", f"{c.dendrites} dendrite(s), val {_fmt(c.val)}, params {_fmt(c.params)}: {c.reason}"))
    out += [f"- {k}: {v}" if markdown else f"{k:<24}{v}" for k, v in facts]
    if not h.best_arch.empty:
        out += ["", f"{h2}Architectures", ""] + _table(_arch_rows(h), markdown)
    out += ["", f"{h2}Findings ({len(analysis.findings)})", ""]
    if not analysis.findings:
        out.append("No rule fired.")
    for f in analysis.findings:
        rec = ", ".join(f"{k}={v}" for k, v in f.recommendation.items())
        measured = f" [effect {_fmt(f.effect)} +/- {_fmt(f.se)}, P(>0) {f.confidence:.2f}]" if f.se is not None else ""
        out.append(f"{'- ' if markdown else ''}[{SEVERITY_MARK[f.severity]}] {f.title} ({f.rule_id}): {f.message}{measured}")
        if rec:
            out.append(f"{'  ' if markdown else '    '}recommend: {rec}")
    if h.missing:
        out += ["", f"{h2}Missing", ""] + [f"- {m}" for m in h.missing]
    if plots:
        out += ["", f"{h2}Plots", ""] + [f"![{p}]({p})" if markdown else p for p in plots]
    return "\n".join(out) + "\n"
