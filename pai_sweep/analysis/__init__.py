"""Analysis: PerforatedAI output -> RunHistory -> rule findings, summary, chosen architecture, report."""

from pai_sweep.analysis.context import RuleContext
from pai_sweep.analysis.findings import FINDINGS_JSON_SCHEMA, SCHEMA_VERSION, Finding
from pai_sweep.analysis.history import RunHistory
from pai_sweep.analysis.reader import read_history
from pai_sweep.errors import AnalysisError

__all__ = [
    "AnalysisError",
    "FINDINGS_JSON_SCHEMA",
    "Finding",
    "RuleContext",
    "RunHistory",
    "SCHEMA_VERSION",
    "read_history",
]
