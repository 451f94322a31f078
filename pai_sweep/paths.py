"""Where the packaged config folders live (conf/ and recipes/): a leaf module, so checks and builders can find
them without importing the Hydra compose machinery."""

from __future__ import annotations

from pathlib import Path

from pai_sweep.errors import ConfigError

_PKG = Path(__file__).resolve().parent


def _data_dir(name: str) -> Path:
    # In a wheel, conf/ and recipes/ are copied into the package; in a checkout they sit beside it.
    for candidate in (_PKG / name, _PKG.parent / name):
        if candidate.is_dir():
            return candidate
    raise ConfigError(f"cannot find the '{name}' folder next to {_PKG}: reinstall pai-sweep (pip install .)")


def conf_dir() -> Path:
    return _data_dir("conf")


def recipes_dir() -> Path:
    return _data_dir("recipes")
