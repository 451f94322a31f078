"""Schema of the `dendrites` group: what PerforatedAI perforates and every knob a sweep tunes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


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
    improvement_threshold: Any = field(default_factory=lambda: [0.001, 0.0001, 0.0])  # number or per-dendrite list
    improvement_threshold_raw: float = 1e-5  # absolute gain also needed for a new best
    candidate_weight_initialization_multiplier: float = 0.01  # scale of new dendrite weights
    switch_mode: str = "history"  # history, fixed, no_switch, every_time
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
