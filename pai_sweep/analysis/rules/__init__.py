"""The rule registry. A rule is a function (history, ctx) -> Finding | list[Finding] | None, registered with
@rule(...) in any module of this package; every module here is imported, so adding a file adds its rules."""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from typing import Callable

from pai_sweep.analysis.context import RuleContext
from pai_sweep.analysis.findings import SEVERITIES, Finding
from pai_sweep.analysis.history import RunHistory

RuleFn = Callable[[RunHistory, RuleContext], "Finding | list[Finding] | None"]


@dataclass(frozen=True)
class Rule:
    name: str
    rule_ids: tuple[str, ...]  # the ids its findings may carry
    fn: RuleFn

    @property
    def doc(self) -> str:
        return (self.fn.__doc__ or "").strip()


_RULES: dict[str, Rule] = {}


def rule(*rule_ids: str) -> Callable[[RuleFn], RuleFn]:
    def register(fn: RuleFn) -> RuleFn:
        name = f"{fn.__module__.rsplit('.', 1)[-1]}.{fn.__name__}"
        _RULES[name] = Rule(name, rule_ids, fn)
        return fn

    return register


def all_rules() -> list[Rule]:
    for mod in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{mod.name}")
    return list(_RULES.values())


def run_rules(history: RunHistory, context: RuleContext | None = None) -> list[Finding]:
    """Every rule's findings, problems first. The context fills in what the folder itself does not say."""
    ctx = (context or RuleContext()).merged(history.context())
    findings: list[Finding] = []
    for r in all_rules():
        try:
            out = r.fn(history, ctx)
        except Exception as exc:  # one broken rule must not hide the others' findings
            out = Finding("analysis.rule_error", "warning", f"Rule {r.name} failed",
                          f"The rule could not read this run ({type(exc).__name__}: {exc}).", {"rule": r.name})
        for f in [out] if isinstance(out, Finding) else (out or []):
            findings.append(f)
    rank = {s: i for i, s in enumerate(SEVERITIES)}
    return sorted(findings, key=lambda f: -rank[f.severity])
