"""Analysis: PerforatedAI output -> RunHistory -> rule findings, summary, chosen architecture, report.

The public API (docs/analysis.md): read_history, RuleContext, run_rules, Finding, choose_architecture,
ArchitectureChoice, summarize, analyze, Analysis, write_outputs, FINDINGS_JSON_SCHEMA.
"""

from pai_sweep.analysis.api import Analysis, analyze, default_out_dir, findings_document, write_outputs
from pai_sweep.analysis.measures import ArchitectureChoice, choose_architecture
from pai_sweep.analysis.context import RuleContext
from pai_sweep.analysis.findings import FINDINGS_JSON_SCHEMA, SCHEMA_VERSION, SEVERITIES, Finding
from pai_sweep.analysis.history import RunHistory
from pai_sweep.analysis.reader import read_history
from pai_sweep.analysis.rules import all_rules, run_rules
from pai_sweep.analysis.summary import summarize
from pai_sweep.errors import AnalysisError

__all__ = [
    "Analysis", "AnalysisError", "ArchitectureChoice", "FINDINGS_JSON_SCHEMA", "Finding", "RuleContext", "RunHistory",
    "SCHEMA_VERSION", "SEVERITIES", "all_rules", "analyze", "choose_architecture", "default_out_dir",
    "findings_document", "read_history", "run_rules", "summarize", "write_outputs",
]
