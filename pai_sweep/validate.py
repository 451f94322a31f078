"""Checks a composed config beyond types: names, ranges, combinations. Runs before any work starts.

Each check raises ConfigError with one line that names the key, the problem and the fix.
"""

from __future__ import annotations

import re
from typing import Any, Iterable

from omegaconf import DictConfig

from pai_sweep.errors import ConfigError
from pai_sweep.schema.dendrites import SWITCH_MODES, threshold_schedule
from pai_sweep.schema.runtime import keep_warm_seconds
from pai_sweep.schema.sweep import BRANCHING_MODES, SIZE_LADDER_MODES

MODELS = ("mlp", "small_cnn", "conv1d", "resnet18", "resnet34", "resnet50", "mobilenet_v2", "efficientnet_b0", "transformer", "custom")
DATASETS = ("digits", "digits32", "mnist1d", "cifar10", "cifar100", "image_folder", "custom")
DOWNSIZE = ("none", "family", "width", "depth")
PRESETS = ("cnn", "conv1d", "resnet", "transformer", "linear_only", "off", "auto", "custom")
SAMPLERS = ("tpe", "random", "nsga2", "grid")
OBJECTIVES = ("accuracy", "efficiency", "scalar")
LAUNCHERS = ("local", "slurm", "submitit_local")
TRACKING = ("mlflow", "off")


def one_of(key: str, value: Any, valid: Iterable[str]) -> None:
    valid = tuple(valid)
    if value not in valid:
        raise ConfigError(f"{key}={value!r} is not known; valid values: {', '.join(valid)}")


def positive(key: str, value: Any, allow_zero: bool = False) -> None:
    if value is None or value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ConfigError(f"{key}={value!r} must be {bound}")


def validate_model_downsize(model: DictConfig, downsize: DictConfig) -> None:
    """Sizes that can be built, and a downsizing that fits the model (family ladder); no torch import."""
    from pai_sweep.errors import ModelError
    from pai_sweep.models.downsize import apply_downsize

    for key in ("depth", "n_heads", "n_layers", "patch", "kernel_size"):
        if model.get(key) is not None and model[key] < 1:
            raise ConfigError(f"model.{key}={model[key]} must be >= 1")
    if model.name in ("small_cnn", "conv1d") and model.channels is not None and not model.channels:
        raise ConfigError(f"model.channels=[] leaves {model.name} without convolutions: give at least one, e.g. [8,16]")
    try:
        apply_downsize(model, downsize)
    except ModelError as exc:
        raise ConfigError(str(exc)) from exc


def validate_data(data: DictConfig) -> None:
    """Fractions, limit, image size, and the field each source needs (folders are checked when data loads)."""
    from pai_sweep.data.checks import check_fields, data_spec
    from pai_sweep.errors import DataError

    try:
        spec = data_spec(data)
        check_fields(spec)
    except DataError as exc:
        raise ConfigError(str(exc)) from exc
    if spec.name == "image_folder" and not spec.root:
        raise ConfigError("data=image_folder needs data.root=PATH (a folder with train/<class>/*.png and val/<class>/...)")


def validate_run(cfg: DictConfig) -> None:
    """The groups a worker uses (model, downsize, dendrites, data, train)."""
    one_of("model.name", cfg.model.name, MODELS)
    if cfg.model.name == "custom" and not cfg.model._target_:
        raise ConfigError("model=custom needs model._target_=your.module.ModelClass (an importable callable)")
    one_of("downsize.name", cfg.downsize.name, DOWNSIZE)
    positive("model.width_mult", cfg.model.width_mult)
    positive("downsize.width_mult", cfg.downsize.width_mult)
    validate_model_downsize(cfg.model, cfg.downsize)
    validate_dendrites(cfg.dendrites)
    one_of("data.name", cfg.data.name, DATASETS)
    if cfg.data.name == "custom" and not cfg.data._target_:
        raise ConfigError("data=custom needs data._target_=your.module.make_datasets (returns train, val, test)")
    if not 0 < cfg.data.val_fraction < 1:
        raise ConfigError(f"data.val_fraction={cfg.data.val_fraction} must be between 0 and 1")
    validate_data(cfg.data)
    validate_train(cfg.train, maximizing=bool(cfg.dendrites.maximizing_score))
    from pai_sweep.schema.ranges import check_ranges
    from pai_sweep.task import config_task, direction_problems, loss_problems

    check_ranges(cfg)  # every numeric knob the config holds (the sweep's too, when it has them)
    task = config_task(cfg.data)  # a built-in data set: the loss must fit it (its fix first: the direction follows the loss)
    problems = (loss_problems(cfg.train, task) if task else []) + direction_problems(cfg)  # then a loss scored as if higher were better
    if problems:
        raise ConfigError(problems[0])


def _neuron_axis(key: str, dims: Any) -> None:
    dims = list(dims)
    if dims.count(0) != 1 or any(v not in (-1, 0, 1) and v < 0 for v in dims):
        raise ConfigError(f"{key}={dims} must mark the neuron axis with exactly one 0 and the others with -1, e.g. [-1,0,-1,-1] or [-1,-1,0]")


def validate_dendrites(d: DictConfig) -> None:
    """The dendrites group: names, ranges, dims, and `extra` knob names against perforatedai's (no torch import)."""
    from pai_sweep.schema.knobs import check_knobs

    one_of("dendrites.preset", d.preset, PRESETS)
    one_of("dendrites.switch_mode", d.switch_mode, SWITCH_MODES)
    positive("dendrites.max_dendrites", d.max_dendrites, allow_zero=True)
    positive("dendrites.n_epochs_to_switch", d.n_epochs_to_switch)
    positive("dendrites.history_lookback", d.history_lookback)
    positive("dendrites.max_dendrite_tries", d.max_dendrite_tries)
    positive("dendrites.fixed_switch_num", d.fixed_switch_num)
    positive("dendrites.initial_history_after_switches", d.initial_history_after_switches, allow_zero=True)
    positive("dendrites.improvement_threshold_raw", d.improvement_threshold_raw, allow_zero=True)
    positive("dendrites.candidate_weight_initialization_multiplier", d.candidate_weight_initialization_multiplier)
    threshold_schedule(d.improvement_threshold)
    for key in ("module_ids_to_track", "module_ids_to_perforate"):
        for ident in d[key]:
            if not str(ident).startswith("."):
                raise ConfigError(f"dendrites.{key} entry {ident!r} must start with '.' (e.g. '.{ident}')")
    if d.enabled and not d.module_names_to_perforate and not d.module_ids_to_perforate:
        raise ConfigError("dendrites.module_names_to_perforate is empty: name the layer types to perforate (e.g. [Linear]) or use dendrites=off")
    _neuron_axis("dendrites.output_dimensions", d.output_dimensions)
    for path, dims in d.output_dimension_overrides.items():
        _neuron_axis(f"dendrites.output_dimension_overrides.{path}", dims)
    check_knobs(d)


def validate_train(t: DictConfig, maximizing: bool = True) -> None:
    """The train group; the scheduler's direction must match the score's (dendrites.maximizing_score)."""
    positive("train.batch_size", t.batch_size)
    positive("train.max_epochs", t.max_epochs)
    one_of("train.graphs", t.graphs, ("end", "every_epoch"))
    if not re.fullmatch(r"auto|cpu|cuda(:\d+)?|mps", str(t.device)):
        raise ConfigError(f"train.device={t.device!r} is not known; valid values: auto, cpu, cuda, cuda:N, mps")
    if "params" in t.optimizer.args:
        raise ConfigError("train.optimizer.args.params cannot be set: pai-sweep passes the model's parameters (and PerforatedAI's after a restructure)")
    if t.loss not in ("cross_entropy", "mse") and "." not in str(t.loss):
        raise ConfigError(f"train.loss={t.loss!r} is not known; valid values: cross_entropy, mse, or an import path (mypkg.losses.fn)")
    if t.train_fn and "." not in str(t.train_fn):
        raise ConfigError(f"train.train_fn={t.train_fn!r} must be an import path, e.g. mypkg.train.my_train_fn (docs/worker.md)")
    sched = t.scheduler
    if sched.type and str(sched.type).rsplit(".", 1)[-1] == "ReduceLROnPlateau":
        want = "max" if maximizing else "min"
        mode = sched.args.get("mode", "min")
        if mode != want:
            raise ConfigError(
                f"train.scheduler.args.mode={mode!r} but the score is {'maximised' if maximizing else 'minimised'} "
                f"(dendrites.maximizing_score={maximizing}): set train.scheduler.args.mode={want}"
            )


def validate(cfg: DictConfig) -> None:
    """The whole config: run groups plus sweep, objective, launcher and tracking."""
    validate_run(cfg)
    one_of("sweep.sampler", cfg.sweep.sampler, SAMPLERS)
    one_of("sweep.branching", cfg.sweep.branching, BRANCHING_MODES)
    one_of("sweep.size_ladder", cfg.sweep.size_ladder, SIZE_LADDER_MODES)
    positive("sweep.n_trials", cfg.sweep.n_trials)
    positive("sweep.in_flight", cfg.sweep.in_flight)
    if not 0 <= cfg.sweep.guided_share <= 1:
        raise ConfigError(f"sweep.guided_share={cfg.sweep.guided_share} must be between 0 and 1")
    one_of("objective.name", cfg.objective.name, OBJECTIVES)
    one_of("objective.metric", cfg.objective.metric, ("val", "test"))
    one_of("launcher.name", cfg.launcher.name, LAUNCHERS)  # a slurm launcher's own keys: compose (launchers.slurm.check_config)
    if "keep_warm" in cfg.launcher:
        try:
            keep_warm_seconds(cfg.launcher.keep_warm, interactive=True)
        except ValueError:
            raise ConfigError(f"launcher.keep_warm={cfg.launcher.keep_warm!r} must be auto, off or seconds >= 0 (e.g. 600)") from None
    one_of("tracking.name", cfg.tracking.name, TRACKING)
