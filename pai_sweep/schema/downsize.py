"""Schema of the `downsize` group: how to shrink the base model before adding dendrites."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional


@dataclass
class DownsizeConfig:
    name: str = "none"  # none, family, width, depth
    family: Optional[str] = None  # model to swap to (resnet50 -> resnet34/resnet18/mobilenet_v2/efficientnet_b0)
    width_mult: float = 1.0  # multiplies model.width_mult
    depth: Optional[int] = None  # overrides model.depth (fewer blocks/layers)
