"""The valid range of every numeric knob, checked at compose time (validate.validate calls check_ranges).

Types are the schema's job (OmegaConf refuses `sweep.in_flight=abc`); this table says which numbers
make sense. Each failure is one ConfigError line: the key, the value and the valid range
("sweep.trial_timeout=-5 must be > 0 (seconds), or null for no limit").
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from pai_sweep.errors import ConfigError


@dataclass(frozen=True)
class Range:
    low: float | None = None  # None: unbounded
    high: float | None = None
    low_open: bool = False  # low itself is not allowed
    high_open: bool = False
    null: str | None = None  # what null means, when null is allowed
    unit: str = ""

    def ok(self, v: float) -> bool:
        if math.isnan(v):
            return False
        if self.low is not None and (v < self.low or (self.low_open and v == self.low)):
            return False
        return self.high is None or not (v > self.high or (self.high_open and v == self.high))

    def text(self) -> str:
        if self.low is not None and self.high is not None:
            lo, hi = "(" if self.low_open else "[", ")" if self.high_open else "]"
            text = f"in {lo}{self.low:g}, {self.high:g}{hi}"
        elif self.low is not None:
            text = f"{'>' if self.low_open else '>='} {self.low:g}"
        else:
            text = f"{'<' if self.high_open else '<='} {self.high:g}"
        text += f" ({self.unit})" if self.unit else ""
        return text + (f", or null for {self.null}" if self.null else "")


POSITIVE = Range(0, low_open=True)
AT_LEAST_1 = Range(1)
NON_NEGATIVE = Range(0)

# dotted key -> range; a key holding a list checks every entry ("model.hidden": each width)
RANGES: dict[str, Range] = {
    "sweep.n_trials": Range(1, unit="trials, counted across resumes"),
    "sweep.in_flight": Range(1, unit="trials running at once"),
    "sweep.guided_share": Range(0, 1, unit="share of n_trials from the analysis' recommendations"),
    "sweep.prefix_reuse": Range(0, 1, unit="share of sampler trials that reuse a front trial's neuron phase"),
    "sweep.pruner_warmup": Range(0, unit="epochs"),
    "sweep.pruner_startup": Range(0, unit="finished trials"),
    "sweep.max_failures": Range(1, unit="failed trials before the sweep stops"),
    "sweep.trial_timeout": Range(0, low_open=True, unit="seconds", null="no limit"),
    "objective.tolerance": Range(0, unit="score points below the baseline"),
    "objective.param_weight": Range(0, unit="score points per doubling of the parameters"),
    "objective.penalties": Range(0, unit="score points taken off"),
    "train.batch_size": AT_LEAST_1,
    "train.max_epochs": AT_LEAST_1,
    "train.optimizer.args.lr": Range(0, low_open=True, unit="learning rate"),
    "train.optimizer.args.weight_decay": NON_NEGATIVE,
    "train.optimizer.args.momentum": Range(0, 1),
    "train.scheduler.args.patience": Range(0, unit="epochs"),
    "train.scheduler.args.factor": Range(0, 1, low_open=True, high_open=True),
    "dendrites.max_dendrites": NON_NEGATIVE,
    "dendrites.n_epochs_to_switch": AT_LEAST_1,
    "dendrites.history_lookback": AT_LEAST_1,
    "dendrites.max_dendrite_tries": AT_LEAST_1,
    "dendrites.fixed_switch_num": AT_LEAST_1,
    "dendrites.first_fixed_switch_num": Range(-1, unit="-1: fixed_switch_num"),
    "dendrites.initial_history_after_switches": NON_NEGATIVE,
    "dendrites.improvement_threshold_raw": NON_NEGATIVE,
    "dendrites.candidate_weight_initialization_multiplier": POSITIVE,
    "data.val_fraction": Range(0, 1, low_open=True, high_open=True),
    "data.test_fraction": Range(0, 1, high_open=True),
    "data.image_size": Range(1, unit="pixels per side", null="the native size"),
    "data.limit": Range(1, unit="training samples", null="all"),
    "data.num_workers": NON_NEGATIVE,
    "model.width_mult": POSITIVE,
    "model.hidden": AT_LEAST_1,
    "model.channels": Range(1, null="the model's default"),
    "model.kernel_size": AT_LEAST_1,
    "model.depth": Range(1, null="every block"),
    "model.d_model": AT_LEAST_1,
    "model.n_heads": AT_LEAST_1,
    "model.n_layers": AT_LEAST_1,
    "model.patch": AT_LEAST_1,
    "model.dropout": Range(0, 1, high_open=True),
    "downsize.width_mult": POSITIVE,
    "downsize.depth": Range(1, null="the model's own depth"),
    "launcher.poll_interval": Range(0, low_open=True, unit="seconds"),
    "launcher.gpus_per_trial": NON_NEGATIVE,
    "launcher.cpus_per_trial": AT_LEAST_1,
    "launcher.mem_gb": Range(0, low_open=True, unit="GB", null="the partition's default"),
    "launcher.time_min": Range(1, unit="minutes"),
    "launcher.array_parallelism": AT_LEAST_1,
    "launcher.trials_per_device": AT_LEAST_1,
    "launcher.max_requeues": NON_NEGATIVE,
    "tracking.request_timeout": Range(0, low_open=True, unit="seconds"),
    "tracking.max_retries": NON_NEGATIVE,
}


def _lookup(cfg: Any, key: str) -> tuple[bool, Any]:
    node = cfg
    for part in key.split("."):
        try:
            if part not in node:
                return False, None
            node = node[part]
        except TypeError:  # not a mapping
            return False, None
    return True, node


def _entries(key: str, value: Any) -> list[tuple[str, Any]]:
    if isinstance(value, (str, bytes, int, float)) or value is None:
        return [(key, value)]
    if hasattr(value, "items"):
        return [(f"{key}.{k}", v) for k, v in value.items()]
    try:
        return [(f"{key}[{i}]", v) for i, v in enumerate(value)]
    except TypeError:
        return [(key, value)]


def check_ranges(cfg: Any) -> None:
    """ConfigError (one line) for the first numeric knob outside its range; keys a config lacks are skipped."""
    for key, rng in RANGES.items():
        found, value = _lookup(cfg, key)
        if not found:
            continue
        for name, v in _entries(key, value):
            if v is None:
                if rng.null:
                    continue
                raise ConfigError(f"{name}=null is not allowed: must be {rng.text()}")
            number = _number(v)
            if number is None:
                raise ConfigError(f"{name}={v!r} must be a number {rng.text()}")
            if not rng.ok(number):
                raise ConfigError(f"{name}={v!r} must be {rng.text()}")


def _number(v: Any) -> float | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, (int, float)):
        return float(v)
    try:
        return float(v) if isinstance(v, str) else None  # YAML reads 1e-3 as a string; torch gets float() of it
    except ValueError:
        return None
