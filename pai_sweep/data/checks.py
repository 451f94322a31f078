"""Cheap checks of a data config (no torch): typed fields, fractions, folders that must exist."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from pai_sweep.errors import DataError
from pai_sweep.schema.data import DataConfig

DATASETS = ("digits", "digits32", "mnist1d", "cifar10", "cifar100", "image_folder", "custom")
CIFAR_FOLDERS = {"cifar10": "cifar-10-batches-py", "cifar100": "cifar-100-python"}


def data_spec(data_cfg: Any) -> DictConfig:
    """A data config (DictConfig or dict) as a typed DataConfig node; DataError on unknown keys or types."""
    try:
        spec = OmegaConf.merge(OmegaConf.structured(DataConfig), data_cfg if data_cfg is not None else {})
        if OmegaConf.is_missing(spec, "root"):  # image_folder's `root: ???` not given
            spec.root = None
        return spec
    except Exception as exc:  # OmegaConf's ValidationError / ConfigKeyError / MissingMandatoryValue
        text = " ".join(str(exc).split()).split(" full_key:")[0]
        raise DataError(f"data config is invalid ({text}): use the fields of DataConfig (pai_sweep/schema/data.py)") from exc


def check_fields(spec: DictConfig) -> None:
    if spec.name not in DATASETS:
        raise DataError(f"data.name={spec.name!r} is not known; valid data sets: {', '.join(DATASETS)}")
    if not 0 < spec.val_fraction < 1 or not 0 <= spec.test_fraction < 1 or spec.val_fraction + spec.test_fraction >= 1:
        raise DataError(
            f"data.val_fraction={spec.val_fraction} and data.test_fraction={spec.test_fraction} must be in (0, 1) "
            "and [0, 1) and leave data to train on (sum < 1), e.g. 0.2 and 0.2"
        )
    if spec.limit is not None and spec.limit < 1:
        raise DataError(f"data.limit={spec.limit} must be >= 1 (training samples to keep) or null for all")
    if spec.image_size is not None and spec.image_size < 1:
        raise DataError(f"data.image_size={spec.image_size} must be >= 1 (pixels per side) or null for the native size")
    if spec.num_workers < 0:
        raise DataError(f"data.num_workers={spec.num_workers} must be >= 0")


def check_available(data_cfg: Any) -> None:
    """DataError unless the data can be loaded here: folders exist, or a download is allowed."""
    spec = data_spec(data_cfg)
    check_fields(spec)
    if spec.name in CIFAR_FOLDERS:
        folder = Path(str(spec.root or ".")).expanduser() / CIFAR_FOLDERS[spec.name]
        if not folder.is_dir() and not spec.download:
            raise DataError(
                f"data={spec.name}: {folder} is missing and data.download=false; set data.root to the folder holding "
                f"{CIFAR_FOLDERS[spec.name]}/, or data.download=true (needs internet), or use data=digits32 offline"
            )
    elif spec.name == "image_folder":
        if not spec.root:
            raise DataError("data=image_folder needs data.root=PATH (a folder with train/<class>/*.png and val/<class>/...)")
        root = Path(str(spec.root)).expanduser()
        if not (root / "train").is_dir():
            what = "does not exist" if not root.exists() else "has no train/ folder"
            raise DataError(f"data.root={str(spec.root)!r} {what}: point data.root at a folder with train/<class>/*.png (val/ and test/ optional)")
    elif spec.name == "custom" and not spec._target_:
        raise DataError("data=custom needs data._target_=your.module.make_datasets (returns train, val, test datasets)")
