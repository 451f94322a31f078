"""What load_data returns (no torch import here)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class DataBundle:
    train: Any  # torch DataLoader, shuffled by a generator seeded with load_data's seed
    val: Any  # DataLoader, fixed order
    test: Any  # DataLoader, fixed order
    input_shape: tuple[int, ...]  # one sample, e.g. (1, 8, 8)
    num_classes: int
    task: str = "classification"
