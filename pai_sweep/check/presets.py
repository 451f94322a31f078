"""Which built-in dendrites preset fits a model, and why: structure first, then the dims on a sample batch."""

from __future__ import annotations

from typing import Any

from omegaconf import OmegaConf
from torch import nn

from pai_sweep.check.dims import DimsReport, check_dims
from pai_sweep.check.inspect import Inspection, inspect_model
from pai_sweep.paths import conf_dir
from pai_sweep.schema import DendritesConfig

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
