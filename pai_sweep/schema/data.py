"""Schema of the `data` group: where train/validation/test batches come from."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional


@dataclass
class DataConfig:
    name: str = "digits"  # digits, digits32, mnist1d, cifar10, cifar100, image_folder, custom
    _target_: Optional[str] = None  # data=custom: callable returning (train, val, test) datasets
    kwargs: dict[str, Any] = field(default_factory=dict)
    root: Optional[str] = None  # folder holding the data set (cifar, image_folder)
    download: bool = False  # torchvision download when the data is missing (needs internet)
    val_fraction: float = 0.2  # of the labelled data, held out for validation
    test_fraction: float = 0.2  # of the labelled data, held out for test (when there is no test split: not cifar, mnist1d)
    image_size: Optional[int] = None  # resize images to this side (None: native)
    limit: Optional[int] = None  # use at most this many training samples (quick runs, tests)
    seed: int = 0  # split and shuffling seed
    num_workers: int = 0  # DataLoader workers
