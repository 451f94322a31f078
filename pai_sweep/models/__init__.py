"""Base models by name or `_target_`, and downsizing (family swap, width, depth).

    model = build_model(apply_downsize(cfg.model, cfg.downsize), data.input_shape, data.num_classes)

Importing this package does not import torch (validate.py uses the downsizing rules at
compose time); build_model and count_params import it when called.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pai_sweep.models.downsize import SMALLER_FAMILIES, apply_downsize, model_spec
from pai_sweep.reads import Reads

if TYPE_CHECKING:
    from torch import nn

__all__ = ["MODELS", "SMALLER_FAMILIES", "apply_downsize", "build_model", "count_params", "model_spec"]

MODELS = ("mlp", "small_cnn", "conv1d", "resnet18", "resnet34", "resnet50", "mobilenet_v2", "efficientnet_b0", "transformer", "custom")


def _model_reads(field: str, cfg: Any) -> bool:
    from pai_sweep.models.build import fields_used  # imports torch: only when a model field is checked

    return field.split(".", 1)[1] in fields_used(cfg.model)


def _model_hint(field: str, cfg: Any) -> str | None:
    if cfg.model.name == "custom" and field.endswith((".width_mult", ".depth")):
        arg = field.rsplit(".", 1)[1]
        return f"give {cfg.model._target_} a '{arg}' argument, or stop searching {field}"
    return None


# What the model builders read (zoo.READS, vision.READS, build.fields_used): a model field, and
# downsize.width_mult / downsize.depth, which multiply into model.width_mult / set model.depth.
READS = Reads(
    selector="model.name",
    choices=MODELS,
    governs=lambda field: field.startswith("model.") or field in ("downsize.width_mult", "downsize.depth"),
    acts=lambda field, cfg: _model_reads(field if field.startswith("model.") else "model." + field.split(".")[1], cfg),
    hint=_model_hint,
)


def build_model(model_cfg: Any, input_shape: tuple[int, ...], num_classes: int) -> "nn.Module":
    """The model `model_cfg` names (a ModelConfig as DictConfig or dict), random init unless model.weights is set."""
    from pai_sweep.models.build import build_model as build

    return build(model_cfg, input_shape, num_classes)


def count_params(model: "nn.Module") -> int:
    """Trainable parameters of `model`."""
    from pai_sweep.models.build import count_params as count

    return count(model)
