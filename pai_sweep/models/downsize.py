"""Downsizing: the model config a run really builds (family swap, width, depth). No torch here.

validate.py calls this at compose time, so a downsizing that does not fit the model stops
before any work starts.
"""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig, OmegaConf

from pai_sweep.errors import ModelError
from pai_sweep.reads import Reads
from pai_sweep.schema.downsize import DownsizeConfig
from pai_sweep.schema.model import ModelConfig

# Smaller models each family may be swapped to (PerforatedAI's setup guide's Step 1): the same family's
# smaller variants, then the efficient architectures. The smallest have no smaller family.
SMALLER_FAMILIES: dict[str, tuple[str, ...]] = {
    "resnet50": ("resnet34", "resnet18", "mobilenet_v2", "efficientnet_b0"),
    "resnet34": ("resnet18", "mobilenet_v2", "efficientnet_b0"),
    "resnet18": ("mobilenet_v2", "efficientnet_b0"),
    "mobilenet_v2": (),
    "efficientnet_b0": (),
}


def _typed(node: Any, schema: type, key: str) -> DictConfig:
    """`node` (DictConfig or dict) merged onto its schema: unknown keys and wrong types become ModelError."""
    try:
        return OmegaConf.merge(OmegaConf.structured(schema), node if node is not None else {})
    except Exception as exc:  # OmegaConf's ValidationError / ConfigKeyError
        text = " ".join(str(exc).split()).split(" full_key:")[0]
        raise ModelError(f"{key} config is invalid ({text}): use the fields of {schema.__name__} (pai_sweep/schema/)") from exc


def model_spec(model_cfg: Any) -> DictConfig:
    """A model config (DictConfig or plain dict) as a typed ModelConfig node."""
    return _typed(model_cfg, ModelConfig, "model")


def apply_downsize(model_cfg: Any, downsize_cfg: Any) -> DictConfig:
    """The model config to build: family swapped, width multiplier multiplied in, depth set.

    `downsize=none` builds the model as configured: its other fields are ignored (and a
    searched or overridden one is refused, see READS). Under any other name every field
    applies (the defaults change nothing), so a sweep may combine a family swap with a width
    multiplier. The worker builds exactly what this returns.
    """
    spec = model_spec(model_cfg)
    down = _typed(downsize_cfg, DownsizeConfig, "downsize")
    if down.name == "none":
        return spec
    if down.name == "family" and not down.family:
        raise ModelError(f"downsize=family needs downsize.family=NAME; valid for model={spec.name}: {_valid(spec.name)}")
    if down.family and down.family != spec.name:
        smaller = SMALLER_FAMILIES.get(spec.name)
        if smaller is None:
            raise ModelError(
                f"downsize.family={down.family!r}: model={spec.name} has no smaller family to swap to "
                f"(swaps start from {', '.join(k for k, v in SMALLER_FAMILIES.items() if v)}); use downsize=width or downsize=depth"
            )
        if down.family not in smaller:
            raise ModelError(f"downsize.family={down.family!r} is not a smaller model than {spec.name}; valid: {_valid(spec.name)}")
        spec.name = down.family
        spec.weights = None  # a state_dict of the old family cannot fit the new one
    if not down.width_mult > 0:
        raise ModelError(f"downsize.width_mult={down.width_mult} must be > 0 (e.g. 0.5 halves every width)")
    spec.width_mult = float(spec.width_mult) * float(down.width_mult)
    if down.depth is not None:
        if down.depth < 1:
            raise ModelError(f"downsize.depth={down.depth} must be >= 1 (blocks per stage / layers to keep)")
        spec.depth = down.depth if spec.depth is None else min(spec.depth, down.depth)
    return spec


# What apply_downsize reads: nothing under downsize=none, every field under the other names.
_FIXES = {"downsize.width_mult": "width", "downsize.depth": "depth", "downsize.family": "family"}
READS = Reads(
    selector="downsize.name",
    choices=("width", "depth", "family"),
    governs=lambda field: field in _FIXES,
    acts=lambda field, cfg: cfg.downsize.name != "none",
    hint=lambda field, cfg: f"add downsize={_FIXES[field]}" if cfg.downsize.name == "none" else None,
)


def _valid(name: str) -> str:
    smaller = SMALLER_FAMILIES.get(name)
    if smaller:
        return ", ".join(smaller)
    families = ", ".join(k for k, v in SMALLER_FAMILIES.items() if v)
    return f"none (family swaps start from {families}; use downsize=width or downsize=depth)"
