"""The `auto` dendrites preset: module choices and output_dimensions derived from the model itself.

    dendrites = resolve_auto_preset(run_cfg)   # run_cfg: model, downsize, data, train, dendrites groups

Starts from the built-in preset that fits (presets.fitting_preset) or, when none does, from
every Linear/Conv class the model has; then one forward pass gives each perforated module's
dims: the most common becomes output_dimensions, the rest per-module overrides. Modules
never called in forward (no gradient: a pdb trap) are tracked instead. The sweep knobs
(max_dendrites, thresholds, switch mode, ...) are kept from run_cfg.dendrites.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from omegaconf import DictConfig, OmegaConf
from torch import nn

from pai_sweep.check.dims import MISMATCH, NOT_TENSOR, UNUSED, WRONG_AXIS, check_dims, configured_dims
from pai_sweep.check.inspect import NEURON_LAYERS, inspect_model
from pai_sweep.check.plan import override_key
from pai_sweep.check.presets import fitting_preset, preset_config
from pai_sweep.schema import DendritesConfig

STRUCTURAL = ("module_names_to_perforate", "module_ids_to_perforate", "module_names_to_track", "module_ids_to_track",
              "output_dimensions", "output_dimension_overrides")


def build_for_check(run_cfg: Any) -> tuple[nn.Module, Any, Any]:
    """(model after downsizing, one sample batch of inputs, the DataBundle) exactly as the worker builds them."""
    from pai_sweep.data import load_data
    from pai_sweep.models import apply_downsize, build_model

    data = load_data(run_cfg.data, batch_size=int(run_cfg.train.batch_size), seed=int(run_cfg.train.seed))
    model = build_model(apply_downsize(run_cfg.model, run_cfg.downsize), data.input_shape, data.num_classes)
    inputs = next(iter(data.train))[0]
    return model, inputs[: min(8, len(inputs))], data


def derive(model: nn.Module, sample: Any, base: Any) -> tuple[DictConfig, str]:
    """A dendrites config for `model` (structural keys derived, the rest from `base`) and the reason."""
    preset, reason = fitting_preset(model, sample)
    out = OmegaConf.merge(OmegaConf.structured(DendritesConfig), base)
    if preset != "custom":
        start = preset_config(preset)
        for key in STRUCTURAL:
            out[key] = start[key]
    else:
        kinds = sorted({type(m).__name__ for m in model.modules() if type(m) in NEURON_LAYERS})
        out.module_names_to_perforate = kinds
        out.module_ids_to_perforate, out.module_names_to_track, out.module_ids_to_track = [], [], []
        out.output_dimension_overrides = {}
    found = inspect_model(model, out)
    dims = check_dims(model, found.perforated, out, sample)
    track = [m.path for m in dims.modules if m.status in (UNUSED, NOT_TENSOR)]
    usable = [m for m in dims.modules if m.inferred is not None]
    if preset == "custom" and usable:
        # the most common dims becomes the global list, the others get overrides
        out.output_dimensions = list(Counter(tuple(m.inferred) for m in usable).most_common(1)[0][0])
    perforated = {override_key(m.path) for m in found.perforated}
    overrides = {k: v for k, v in dict(out.output_dimension_overrides).items() if override_key(str(k)) in perforated}
    for m in usable:
        module = model.get_submodule(m.path.lstrip("."))
        global_dims, _ = configured_dims(module, m.path, {"output_dimensions": list(out.output_dimensions)})
        if global_dims != m.inferred:
            overrides[override_key(m.path)] = list(m.inferred)
        else:
            overrides.pop(override_key(m.path), None)
    out.output_dimension_overrides = overrides
    out.module_ids_to_track = list(dict.fromkeys(list(out.module_ids_to_track) + track))
    out.preset = "auto"
    fixed = [m for m in dims.modules if m.status in (MISMATCH, WRONG_AXIS)]
    extra = f"; per-module dims for {', '.join(m.path for m in fixed)}" if fixed else ""
    extra += f"; tracked (never called in forward) {', '.join(track)}" if track else ""
    return out, f"auto from {reason}{extra}"


def resolve_auto_preset(run_cfg: Any) -> DictConfig:
    """The concrete dendrites config `dendrites=auto` stands for, for this run's model and data."""
    model, sample, _ = build_for_check(run_cfg)
    resolved, _ = derive(model, sample, run_cfg.dendrites)
    return resolved
