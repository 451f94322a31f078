"""`pai-sweep env`: versions and devices, for bug reports."""

from __future__ import annotations

import importlib.metadata as md
import platform
import sys


def env_command_parser(subparsers) -> None:
    p = subparsers.add_parser("env", help="print versions and devices (paste it into bug reports)")
    p.set_defaults(func=env_command)


def env_command(args) -> int:
    print(f"python      {sys.version.split()[0]} ({platform.platform()})")
    for dist in ("pai-sweep", "perforatedai", "torch", "torchvision", "hydra-core", "optuna", "submitit", "mlflow", "pandas"):
        try:
            version = md.version(dist)
        except md.PackageNotFoundError:
            version = "not installed"
        print(f"{dist:<12}{version}")
    import torch

    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    print(f"{'cuda':<12}{torch.version.cuda or 'none'}; {gpus} GPU(s) visible")
    return 0
