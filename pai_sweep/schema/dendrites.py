"""Schema of the `dendrites` group: what PerforatedAI perforates and every knob a sweep tunes.

DendritesConfig is the group as composed (improvement_threshold a number or a list); DendritesSpec is
the same group in a run spec (run.yaml, the worker), where improvement_threshold is always the list.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from pai_sweep.errors import ConfigError

# dendrites.switch_mode: when PerforatedAI adds dendrites (the adapter maps each to the library's constant).
SWITCH_MODES = ("history", "fixed", "no_switch", "every_time")
# The keys dendrites=auto derives from the model (check/auto.py): which modules are perforated or tracked, and their
# output dimensions; a run with dendrites=auto never reads what the config says for them.
STRUCTURAL = ("module_names_to_perforate", "module_ids_to_perforate", "module_names_to_track", "module_ids_to_track",
              "output_dimensions", "output_dimension_overrides")


def threshold_schedule(value: Any) -> list[float]:
    """improvement_threshold as a per-dendrite list of numbers >= 0 (a number is the one-entry list).

    The one parser of the knob. PerforatedAI 3.2.9 reads a list by dendrite count, the last entry
    repeating (GPA.pc.get_improvement_threshold), so [x] and x configure the same training.
    """
    if hasattr(value, "_metadata"):  # a ListConfig
        from omegaconf import OmegaConf

        value = OmegaConf.to_container(value, resolve=True)
    items = [value] if value is None or isinstance(value, (int, float, str)) else list(value)
    try:
        numbers = [float(v) for v in items]
    except (TypeError, ValueError):
        numbers = []
    if not numbers or any(n < 0 for n in numbers):
        raise ConfigError(
            f"dendrites.improvement_threshold={value!r} must be a number >= 0 or a list of them, "
            "e.g. 0.001 or [0.001,0.0001,0]"
        )
    return numbers


@dataclass
class DendritesConfig:
    preset: str = "cnn"  # cnn, conv1d, resnet, transformer, linear_only, off, auto
    enabled: bool = True  # False: train the plain model (baselines); no dendrites are added
    module_names_to_perforate: list[str] = field(default_factory=lambda: ["Conv2d", "Linear"])
    module_ids_to_perforate: list[str] = field(default_factory=list)
    module_names_to_track: list[str] = field(default_factory=list)  # kept as-is but tracked (norm layers)
    module_ids_to_track: list[str] = field(default_factory=list)  # ids start with "." (substring match)
    output_dimensions: list[int] = field(default_factory=lambda: [-1, 0, -1, -1])  # where the neuron axis (0) sits
    output_dimension_overrides: dict[str, list[int]] = field(default_factory=dict)  # module path -> dims
    max_dendrites: int = 3  # cap; reaching it completes training
    # a number or a per-dendrite list when composed; a run spec holds the list (DendritesSpec, threshold_schedule)
    improvement_threshold: Any = field(default_factory=lambda: [0.001, 0.0001, 0.0])
    improvement_threshold_raw: float = 1e-5  # absolute gain also needed for a new best
    candidate_weight_initialization_multiplier: float = 0.01  # scale of new dendrite weights
    switch_mode: str = "history"  # one of SWITCH_MODES
    n_epochs_to_switch: int = 10  # history mode: epochs without improvement before adding dendrites
    history_lookback: int = 1  # running-average window for the validation score
    initial_history_after_switches: int = 0  # epochs after a switch before history checks resume
    fixed_switch_num: int = 250  # fixed mode: epochs between switches
    first_fixed_switch_num: int = -1  # fixed mode: epoch of the first switch (-1: fixed_switch_num)
    max_dendrite_tries: int = 2  # retries of a failed dendrite set with a new random init
    retain_all_dendrites: bool = False  # keep dendrites even when they do not help
    maximizing_score: bool = True  # False for losses/errors
    find_best_lr: bool = True  # PerforatedAI's learning-rate search after a switch
    extra: dict[str, Any] = field(default_factory=dict)  # any other GPA.pc.set_<name> knob, checked by name


@dataclass
class DendritesSpec(DendritesConfig):
    """The dendrites group of a run spec: the same fields, improvement_threshold the per-dendrite list."""

    improvement_threshold: list[float] = field(default_factory=lambda: [0.001, 0.0001, 0.0])


def dendrites_config(cfg: Any) -> DendritesSpec:
    """The typed group from a DendritesSpec (as is: the worker's), a DendritesConfig, DictConfig or dict
    (unknown keys raise ConfigError; improvement_threshold becomes its list)."""
    if isinstance(cfg, DendritesSpec):
        return cfg
    if isinstance(cfg, DendritesConfig):
        cfg = dataclasses.asdict(cfg)
    elif hasattr(cfg, "_metadata"):  # DictConfig
        from omegaconf import OmegaConf

        cfg = OmegaConf.to_container(cfg, resolve=True)
    data = dict(cfg or {})
    known = {f.name for f in dataclasses.fields(DendritesSpec)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"dendrites has unknown key(s) {unknown}; valid keys: {', '.join(sorted(known))}")
    if "improvement_threshold" in data:
        data["improvement_threshold"] = threshold_schedule(data["improvement_threshold"])
    return DendritesSpec(**data)
