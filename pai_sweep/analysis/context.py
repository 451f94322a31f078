"""RuleContext: what is known about the run's settings; rules read it when it is there."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

# PerforatedAI's numeric switch modes (GPA.pc.DOING_*) -> the names pai-sweep's config uses
SWITCH_MODES = {0: "every_time", 1: "history", 2: "fixed", 3: "no_switch"}


@dataclass
class RuleContext:
    """Optional knobs of the analysed run. Every field may stay None: rules then give relative advice."""

    switch_mode: str | None = None  # history, fixed, no_switch, every_time
    max_dendrites: int | None = None
    n_epochs_to_switch: int | None = None
    fixed_switch_num: int | None = None
    improvement_threshold: Any = None  # number or per-dendrite list
    candidate_weight_initialization_multiplier: float | None = None
    max_dendrite_tries: int | None = None
    maximizing_score: bool | None = None
    lr: float | None = None  # the optimizer's initial learning rate
    scheduler_patience: int | None = None
    max_epochs: int | None = None  # the runner's epoch cap
    testing_dendrite_capacity: bool | None = None
    module_ids_to_track: list[str] | None = None
    baseline_score: float | None = None  # the original (unperforated) model's score
    baseline_params: int | None = None
    original_params: int | None = None  # parameters before downsizing
    val_samples: int | None = None  # size of the validation set (the sampling error of an accuracy)
    score_kind: str | None = None  # "accuracy_percent" when the worker's own accuracy loop scored the run
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def maximizing(self) -> bool:
        return True if self.maximizing_score is None else bool(self.maximizing_score)

    def merged(self, other: "RuleContext | None") -> "RuleContext":
        """This context with other's known values filling the gaps (self wins)."""
        if other is None:
            return self
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        for f in fields(other):
            if values.get(f.name) in (None, {}, []):
                values[f.name] = getattr(other, f.name)
        return RuleContext(**values)

    @classmethod
    def from_run_config(cls, cfg: dict[str, Any] | None) -> "RuleContext":
        """From a pai-sweep run config (run.yaml as a dict: dendrites.*, train.*, baseline/original params)."""
        if not cfg:
            return cls()
        d = cfg.get("dendrites") or {}
        t = cfg.get("train") or {}
        opt_args = ((t.get("optimizer") or {}).get("args")) or {}
        sched_args = ((t.get("scheduler") or {}).get("args")) or {}
        return cls(
            switch_mode=d.get("switch_mode"),
            max_dendrites=d.get("max_dendrites"),
            n_epochs_to_switch=d.get("n_epochs_to_switch"),
            fixed_switch_num=d.get("fixed_switch_num"),
            improvement_threshold=d.get("improvement_threshold"),
            candidate_weight_initialization_multiplier=d.get("candidate_weight_initialization_multiplier"),
            max_dendrite_tries=d.get("max_dendrite_tries"),
            maximizing_score=d.get("maximizing_score"),
            lr=opt_args.get("lr"),
            scheduler_patience=sched_args.get("patience"),
            max_epochs=t.get("max_epochs"),
            module_ids_to_track=d.get("module_ids_to_track"),
            baseline_score=cfg.get("baseline_score"),
            baseline_params=cfg.get("baseline_params"),
            original_params=cfg.get("original_params"),
            val_samples=cfg.get("val_samples"),
            score_kind=cfg.get("score_kind"),
        )

    @classmethod
    def from_result(cls, result: dict[str, Any] | None) -> "RuleContext":
        """From the worker's result.json: how the score was measured (extra.score)."""
        score = ((result or {}).get("extra") or {}).get("score") or {}
        return cls(val_samples=score.get("val_samples"), score_kind=score.get("kind"))

    @classmethod
    def from_pai_config(cls, cfg: dict[str, Any] | None) -> "RuleContext":
        """From PerforatedAI's own {save_name}_config.json (every knob the library used)."""
        if not cfg:
            return cls()
        mode = cfg.get("switch_mode")
        return cls(
            switch_mode=SWITCH_MODES.get(mode, mode) if mode is not None else None,
            max_dendrites=cfg.get("max_dendrites"),
            n_epochs_to_switch=cfg.get("n_epochs_to_switch"),
            fixed_switch_num=cfg.get("fixed_switch_num"),
            improvement_threshold=cfg.get("improvement_threshold"),
            candidate_weight_initialization_multiplier=cfg.get("candidate_weight_initialization_multiplier"),
            max_dendrite_tries=cfg.get("max_dendrite_tries"),
            maximizing_score=cfg.get("maximizing_score"),
            testing_dendrite_capacity=cfg.get("testing_dendrite_capacity"),
            module_ids_to_track=cfg.get("module_ids_to_track"),
        )
