"""Train/validation/test data for a run: the embedded digits, torchvision sets, image folders, or a `_target_`.

    bundle = load_data(cfg.data, batch_size=cfg.train.batch_size, seed=cfg.train.seed)
    bundle.train, bundle.val, bundle.test   # DataLoaders (train shuffled by `seed`)
    bundle.input_shape, bundle.num_classes  # what build_model needs

Importing this package does not import torch; load_data does.
"""

from __future__ import annotations

from typing import Any

from pai_sweep.data.bundle import DataBundle
from pai_sweep.data.checks import DATASETS, check_available

__all__ = ["DATASETS", "DataBundle", "check_available", "load_data"]


def load_data(data_cfg: Any, batch_size: int, seed: int) -> DataBundle:
    """Loaders and shapes for `data_cfg` (a DataConfig as DictConfig or dict); DataError (one line) on bad input."""
    from pai_sweep.data.loaders import load

    return load(data_cfg, batch_size, seed)
