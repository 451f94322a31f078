"""MNIST-1D (Greydanus 2020): 5,000 sequences of 40 steps, 10 classes, generated locally by the `mnist1d` package.

The published data set is what `make_dataset(get_dataset_args())` generates (seed 42, 4,000
train / 1,000 test). mnist1d's `get_dataset` downloads a pickle instead, so it is never called.
The arrays are cached in $XDG_CACHE_HOME/pai-sweep (default ~/.cache/pai-sweep) under a hash
of the generator's arguments and version, so a sweep generates them once.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import random
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Subset, TensorDataset

from pai_sweep.data.tensors import seeded_split
from pai_sweep.errors import DataError

KEYS = ("x", "y", "x_test", "y_test")


def cache_dir() -> Path:
    """$XDG_CACHE_HOME/pai-sweep, or ~/.cache/pai-sweep when XDG_CACHE_HOME is unset or empty."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "pai-sweep"


def _generator():
    try:
        from mnist1d.data import get_dataset_args, make_dataset
    except ImportError as exc:
        raise DataError(f"data=mnist1d needs the mnist1d package ({exc}): pip install mnist1d") from exc
    try:
        version = importlib.metadata.version("mnist1d")
    except importlib.metadata.PackageNotFoundError:  # imported from a source tree, not installed
        version = ""
    return get_dataset_args(as_dict=True), make_dataset, version


def _generate(args: dict, make_dataset) -> dict[str, np.ndarray]:
    from mnist1d.utils import ObjectView

    # make_dataset reseeds Python's and numpy's global RNGs: keep the caller's streams as they were
    py_state, np_state = random.getstate(), np.random.get_state()
    try:
        raw = make_dataset(ObjectView(dict(args)))
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
    return {k: np.asarray(raw[k]) for k in KEYS}


def _load_cached(path: Path) -> dict[str, np.ndarray] | None:
    try:
        with np.load(path) as saved:
            arrays = {k: saved[k] for k in KEYS}
    except Exception:  # missing, truncated or foreign file: regenerate
        return None
    if len(arrays["x"]) != len(arrays["y"]) or len(arrays["x_test"]) != len(arrays["y_test"]):
        return None
    return arrays


def _save(path: Path, arrays: dict[str, np.ndarray]) -> None:
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # a temporary file in the same folder, then one rename: trials starting together never read half a file
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=path.stem + ".", suffix=".tmp", delete=False) as tmp:
            np.savez(tmp, **arrays)
        os.replace(tmp.name, path)
    except OSError:  # a read-only or full cache folder only costs regenerating next time
        if tmp is not None:
            Path(tmp.name).unlink(missing_ok=True)


def arrays() -> dict[str, np.ndarray]:
    """x [4000, 40], y [4000], x_test [1000, 40], y_test [1000]: from the cache, else generated and cached."""
    args, make_dataset, version = _generator()
    args.pop("url", None)  # where get_dataset would download from; not an input of make_dataset's data
    key = hashlib.sha256(json.dumps({"args": args, "mnist1d": version}, sort_keys=True).encode()).hexdigest()[:16]
    path = cache_dir() / f"mnist1d-{key}.npz"
    cached = _load_cached(path)
    if cached is not None:
        return cached
    generated = _generate(args, make_dataset)
    _save(path, generated)
    return generated


def mnist1d(spec) -> tuple[Subset, Subset, TensorDataset, int]:
    """(train, val, test, num_classes): val is a stratified hold-out of the 4,000 training sequences (data.seed)."""
    data = arrays()
    x = torch.from_numpy(data["x"].astype(np.float32)).unsqueeze(1)  # [N, 1, 40]: one channel over time
    y = torch.from_numpy(data["y"].astype(np.int64))
    full = TensorDataset(x, y)
    val, train = seeded_split(len(full), (spec.val_fraction,), spec.seed, data["y"])
    test = TensorDataset(torch.from_numpy(data["x_test"].astype(np.float32)).unsqueeze(1), torch.from_numpy(data["y_test"].astype(np.int64)))
    return Subset(full, train.tolist()), Subset(full, val.tolist()), test, 10
