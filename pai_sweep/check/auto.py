"""The `auto` dendrites preset: module choices and output_dimensions derived from the model itself.

    dendrites = resolve_auto_preset(run_cfg)   # run_cfg: model, downsize, data, train, dendrites groups

Starts from the built-in preset that fits (fitting_preset: structure first, then the dims on a
sample batch) or, when none does, from every Linear/Conv class the model has; then one forward pass gives each perforated module's
dims: the most common becomes output_dimensions, the rest per-module overrides. Modules
never called in forward (no gradient: a pdb trap) are tracked instead. The sweep knobs
(max_dendrites, thresholds, switch mode, ...) are kept from run_cfg.dendrites.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from omegaconf import DictConfig, OmegaConf
from torch import nn

from pai_sweep.check.inspect import (
    MISMATCH, NEURON_LAYERS, NOT_TENSOR, UNUSED, WRONG_AXIS, DimsReport, Inspection, check_dims, configured_dims, inspect_model,
)
from pai_sweep.check.plan import override_key
from pai_sweep.paths import conf_dir
from pai_sweep.schema.dendrites import STRUCTURAL, DendritesConfig


# ---------------------------------------------------------------- which built-in preset fits

RESNET_BLOCKS = ("BasicBlock", "Bottleneck")
ATTENTION = (nn.TransformerEncoderLayer, nn.TransformerDecoderLayer, nn.MultiheadAttention)
CONVS = (nn.Conv2d, nn.Conv3d)


def preset_config(name: str) -> Any:
    """conf/dendrites/<name>.yaml merged onto the schema defaults (a DictConfig)."""
    return OmegaConf.merge(OmegaConf.structured(DendritesConfig), OmegaConf.load(conf_dir() / "dendrites" / f"{name}.yaml"))


def candidates(model: nn.Module) -> tuple[list[str], str]:
    """Presets to try, best first, and the structural reason."""
    kinds = [type(m).__name__ for m in model.modules()]
    blocks = [k for k in kinds if k in RESNET_BLOCKS]
    if blocks:
        return ["resnet", "cnn"], f"it has {len(blocks)} {blocks[0]} blocks (a ResNet): the setup guide perforates whole blocks and the Linear head, tracking the stem"
    attention = [type(m).__name__ for m in model.modules() if isinstance(m, ATTENTION)]
    if attention:
        return ["transformer", "linear_only"], f"it has {len(attention)} attention layers ({attention[0]}): Linear layers see [batch, tokens, features]"
    convs = sum(isinstance(m, CONVS) for m in model.modules())
    if convs:
        return ["cnn", "linear_only"], f"it has {convs} convolutions: their outputs are [batch, channels, H, W]"
    # only 1-D convolutions: the cnn preset names Conv2d and would perforate nothing but the Linear layers
    convs_1d = sum(isinstance(m, nn.Conv1d) for m in model.modules())
    if convs_1d:
        return ["conv1d", "linear_only"], f"it has {convs_1d} Conv1d convolutions: their outputs are [batch, channels, time]"
    if any(isinstance(m, nn.Linear) for m in model.modules()):
        return ["linear_only", "cnn"], "it has only Linear layers, each on [batch, features]"
    return [], "it has no Linear or Conv layer that PerforatedAI can perforate"


def evaluate_preset(model: nn.Module, name: str, sample: Any) -> tuple[Inspection, DimsReport]:
    cfg = preset_config(name)
    found = inspect_model(model, cfg)
    return found, check_dims(model, found.perforated, cfg, sample)


def fitting_preset(model: nn.Module, sample: Any) -> tuple[str, str]:
    """(preset, reason): the first structural candidate whose dims fit every perforated module, else "custom"."""
    names, reason = candidates(model)
    misfits = []
    for name in names:
        found, dims = evaluate_preset(model, name, sample)
        if found.perforated and not dims.problems:
            return name, f"{name}: {reason}"
        first = (dims.problems[0].message() if dims.problems else "; ".join(found.problems[:1])) or "nothing perforated"
        misfits.append(f"{name} does not fit ({first})")
    return "custom", f"custom: no built-in preset fits ({'; '.join(misfits) or reason}); use dendrites=auto, which sets per-module dims"


# ---------------------------------------------------------------- the auto preset


def build_for_check(run_cfg: Any) -> tuple[nn.Module, Any, Any]:
    """(model after downsizing, one sample batch of inputs, the DataBundle) exactly as the worker builds them."""
    from pai_sweep.data.loaders import load as load_data
    from pai_sweep.models.build import build_model
    from pai_sweep.models.downsize import apply_downsize

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
