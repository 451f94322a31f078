"""Schema of the `model` group: which base network to build."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional


@dataclass
class ModelConfig:
    name: str = "mlp"  # mlp, small_cnn, conv1d, resnet18/34/50, mobilenet_v2, efficientnet_b0, transformer, custom
    _target_: Optional[str] = None  # model=custom: import path of a callable returning an nn.Module
    kwargs: dict[str, Any] = field(default_factory=dict)  # extra constructor arguments
    hidden: list[int] = field(default_factory=lambda: [64, 32])  # mlp: hidden layer widths
    channels: Optional[list[int]] = None  # conv channels per stage; None: small_cnn [8, 16], conv1d [8, 16, 32]
    kernel_size: int = 3  # conv1d: kernel length (odd keeps the sequence length)
    batch_norm: bool = True  # conv1d: BatchNorm1d after each conv (tracked, not perforated)
    width_mult: float = 1.0  # scales every width/channel count (downsizing multiplies into it)
    depth: Optional[int] = None  # blocks/layers to keep where the family supports it (None = all)
    d_model: int = 32  # transformer: token width
    n_heads: int = 2  # transformer: attention heads
    n_layers: int = 2  # transformer: encoder layers
    patch: int = 4  # transformer: image patch side (images become patch tokens)
    dropout: float = 0.0
    weights: Optional[str] = None  # path to a state_dict to start from (pretrained, when you have it)
