"""Finding: one rule's verdict on a run, and the JSON schema of findings.json."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

SCHEMA_VERSION = 2  # 2: findings carry effect, se, confidence, dendrites; summary carries noise
SEVERITIES = ("info", "warning", "problem")  # ordered: a problem outranks a warning


@dataclass
class Finding:
    """What a rule saw (evidence), what it means (message) and what to change (recommendation).

    recommendation maps dotted run-config keys ("dendrites.max_dendrites") to a value: an
    absolute value when the rule knew the current one, else a relative string: "+5", "-2",
    "x0.5" (multiply; a list is multiplied element by element).
    """

    rule_id: str
    severity: str
    title: str
    message: str
    evidence: dict[str, Any] = field(default_factory=dict)
    recommendation: dict[str, Any] = field(default_factory=dict)
    # the difference the finding is about (positive = better, in score units), its standard error and
    # P(effect > 0); None when the finding compares no scores (pai_sweep.analysis.noise)
    effect: float | None = None
    se: float | None = None
    confidence: float | None = None
    # the dendrite counts (architectures) the finding is about; None: the whole run. Penalties follow it.
    dendrites: list[int] | None = None

    def measured(self, judgement: Any) -> "Finding":
        """This finding with the effect, standard error and confidence of a noise.Judgement (None: unchanged)."""
        if judgement is not None:
            self.effect = round(float(judgement.effect), 6)
            self.se = round(float(judgement.se), 6)
            self.confidence = round(float(judgement.confidence), 4)
        return self

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {SEVERITIES}, got {self.severity!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_VALUE = {}  # any JSON value
_FINDING = {
    "type": "object",
    "required": ["rule_id", "severity", "title", "message", "evidence", "recommendation"],
    "properties": {
        "rule_id": {"type": "string", "description": "stable id, e.g. dendrites.diminishing_returns"},
        "severity": {"enum": list(SEVERITIES)},
        "title": {"type": "string"},
        "message": {"type": "string", "description": "one or two sentences for a person"},
        "evidence": {"type": "object", "additionalProperties": _VALUE},
        "recommendation": {
            "type": "object",
            "description": "dotted run-config key -> absolute value, or relative string '+N' / '-N' / 'xF'",
            "additionalProperties": _VALUE,
        },
        "effect": {"type": ["number", "null"], "description": "the compared difference, positive = better, score units"},
        "se": {"type": ["number", "null"], "description": "its standard error (binomial or epoch spread)"},
        "confidence": {"type": ["number", "null"], "description": "P(effect > 0), normal approximation"},
        "dendrites": {"type": ["array", "null"], "items": {"type": "integer"},
                      "description": "architectures (dendrite counts) the finding is about; null = the whole run"},
    },
}
_NUM = {"type": ["number", "null"]}
FINDINGS_JSON_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "pai-sweep findings.json",
    "type": "object",
    "required": ["schema_version", "source", "summary", "choice", "findings"],
    "properties": {
        "schema_version": {"const": SCHEMA_VERSION},
        "source": {
            "type": "object",
            "required": ["folder", "save_name"],
            "properties": {"folder": {"type": "string"}, "save_name": {"type": "string"},
                           "trial_dir": {"type": ["string", "null"]}, "format": {"type": "string"}},
        },
        "summary": {"type": "object", "description": "see docs/analysis.md, 'summary'"},
        "choice": {
            "type": ["object", "null"],
            "required": ["dendrites", "val", "test", "params", "reason"],
            "properties": {"dendrites": {"type": "integer"}, "val": _NUM, "test": _NUM,
                           "params": {"type": ["integer", "null"]}, "reason": {"type": "string"}},
        },
        "architectures": {"type": "array", "items": {"type": "object"},
                          "description": "best-architecture rows, accepted and rejected"},
        "findings": {"type": "array", "items": _FINDING},
    },
}
