"""load_data: pick the source, hold out splits, cap the training set, wrap everything in DataLoaders."""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, Subset

from pai_sweep.data.bundle import DataBundle
from pai_sweep.data.checks import check_available, data_spec
from pai_sweep.data.tensors import capped, seeded_split
from pai_sweep.errors import DataError
from pai_sweep.models.target import accepted, import_target


def load(data_cfg: Any, batch_size: int, seed: int) -> DataBundle:
    spec = data_spec(data_cfg)
    check_available(spec)
    if batch_size < 1:
        raise DataError(f"batch_size={batch_size} must be >= 1")
    if spec.name in ("digits", "digits32"):
        from pai_sweep.data.digits import digits

        train, val, test, num_classes = digits(spec, rgb=spec.name == "digits32")
    elif spec.name == "mnist1d":
        from pai_sweep.data.mnist1d import mnist1d

        train, val, test, num_classes = mnist1d(spec)
    elif spec.name in ("cifar10", "cifar100"):
        from pai_sweep.data.folders import cifar

        train, val, test, num_classes = cifar(spec)
    elif spec.name == "image_folder":
        from pai_sweep.data.folders import image_folder

        train, val, test, num_classes = image_folder(spec)
    else:
        train, val, test, num_classes = custom(spec)
    task = dataset_task(train)
    train = capped(train, spec.limit, spec.seed)
    input_shape = tuple(int(s) for s in torch.as_tensor(train[0][0]).shape)

    def loader(ds: Dataset, shuffle: bool) -> DataLoader:
        # a lone last sample breaks BatchNorm in training (1 value per channel at 1x1): drop just that case
        drop_last = shuffle and len(ds) > batch_size and len(ds) % batch_size == 1
        generator = torch.Generator().manual_seed(seed) if shuffle else None
        return DataLoader(ds, batch_size=batch_size, shuffle=shuffle, generator=generator, drop_last=drop_last,
                          num_workers=spec.num_workers)

    return DataBundle(loader(train, True), loader(val, False), loader(test, False), input_shape, int(num_classes), task)


def _base(ds: Dataset) -> Dataset:
    while isinstance(ds, Subset):
        ds = ds.dataset
    return ds


def dataset_task(train: Dataset) -> str:
    """A custom dataset declares regression with a `task = "regression"` attribute (default: classification)."""
    task = getattr(_base(train), "task", "classification")
    if task not in ("classification", "regression"):
        raise DataError(f"dataset attribute task={task!r} is not known; use 'classification' or 'regression'")
    return task


def custom(spec) -> tuple[Dataset, Dataset, Dataset, int]:
    """data._target_(**data.kwargs) -> (train, val, test); a None val/test is held out of train by data.seed."""
    example = "mypkg.data.make_datasets"
    factory = import_target(spec._target_, "data._target_", DataError, example)
    kwargs = dict(spec.kwargs)
    kwargs.update({k: v for k, v in accepted(factory, {"seed": spec.seed}).items() if k not in kwargs})
    try:
        result = factory(**kwargs)
    except Exception as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise DataError(f"data._target_={spec._target_!r} failed with kwargs {sorted(kwargs)} ({reason}): fix data.kwargs") from exc
    if not isinstance(result, (tuple, list)) or len(result) != 3 or result[0] is None:
        raise DataError(f"data._target_={spec._target_!r} must return (train, val, test) datasets (val/test may be None), got {type(result).__name__}")
    train, val, test = result
    fractions = (spec.val_fraction if val is None else 0.0, spec.test_fraction if test is None else 0.0)
    if any(fractions):
        held_val, held_test, rest = seeded_split(len(train), fractions, spec.seed)
        val = Subset(train, held_val.tolist()) if val is None else val
        test = Subset(train, held_test.tolist()) if test is None else test
        train = Subset(train, rest.tolist())
    for name, ds in (("train", train), ("val", val), ("test", test)):
        if not hasattr(ds, "__getitem__") or not hasattr(ds, "__len__") or len(ds) == 0:
            raise DataError(f"data._target_={spec._target_!r}: the {name} dataset is empty or not a map-style Dataset (needs __len__ and __getitem__)")
    return train, val, test, _num_classes(train, spec._target_)


def _num_classes(train, target: str) -> int:
    base = _base(train)
    if dataset_task(train) == "regression":
        # regression: the model's output width is the target's width
        return int(getattr(base, "num_outputs", None) or torch.as_tensor(train[0][1]).numel())
    classes = getattr(base, "classes", None)
    if classes is not None:
        return len(classes)
    # no `classes` attribute: one pass over the labels
    labels = [int(torch.as_tensor(train[i][1])) for i in range(len(train))]
    if min(labels) < 0:
        raise DataError(f"data._target_={target!r}: labels must be class indices 0..K-1 (found {min(labels)})")
    return max(labels) + 1
