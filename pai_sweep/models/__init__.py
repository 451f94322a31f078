"""Base models by name or `_target_`, and downsizing (family swap, width, depth).

    model = build_model(apply_downsize(cfg.model, cfg.downsize), data.input_shape, data.num_classes)

Importing this package does not import torch (validate.py uses the downsizing rules at
compose time); build_model and count_params import it when called.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pai_sweep.models.downsize import SMALLER_FAMILIES, apply_downsize, model_spec

if TYPE_CHECKING:
    from torch import nn

__all__ = ["MODELS", "SMALLER_FAMILIES", "apply_downsize", "build_model", "count_params", "model_spec"]

MODELS = ("mlp", "small_cnn", "conv1d", "resnet18", "resnet34", "resnet50", "mobilenet_v2", "efficientnet_b0", "transformer", "custom")


def build_model(model_cfg: Any, input_shape: tuple[int, ...], num_classes: int) -> "nn.Module":
    """The model `model_cfg` names (a ModelConfig as DictConfig or dict), random init unless model.weights is set."""
    from pai_sweep.models.build import build_model as build

    return build(model_cfg, input_shape, num_classes)


def count_params(model: "nn.Module") -> int:
    """Trainable parameters of `model`."""
    from pai_sweep.models.build import count_params as count

    return count(model)
