"""Which devices trials run on, found without importing torch (the driver must never touch CUDA): the GPUs
this process may use, the local launcher's device slots, and the cores each trial gets."""

from __future__ import annotations

import os
import shutil
import subprocess
from typing import Any

from pai_sweep.errors import ConfigError


def visible_gpus() -> list[str]:
    """GPU ids this process may use, without importing torch (the driver must never touch CUDA)."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        return [d.strip() for d in env.split(",") if d.strip() and d.strip() != "-1"]
    if not shutil.which("nvidia-smi"):
        return []
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [str(i) for i, line in enumerate(out.splitlines()) if line.startswith("GPU ")]


def device_slots(devices: Any, in_flight: int, per_device: int = 1, gpus: list[str] | None = None) -> list[str]:
    """The slots trials run in: each GPU id `per_device` times (round robin: the first trials spread over
    the GPUs), or "cpu" repeated in_flight times; never more than in_flight. `gpus`: what auto finds."""
    if isinstance(per_device, bool) or not isinstance(per_device, int) or per_device < 1:
        raise ConfigError(f"launcher.trials_per_device={per_device!r} must be an integer >= 1 (trials sharing one device)")
    if devices in (None, "auto"):
        found = visible_gpus() if gpus is None else gpus
        if not found:
            return ["cpu"] * in_flight
        ids = list(found)
    elif devices == "cpu":
        return ["cpu"] * in_flight
    else:
        if isinstance(devices, (int, str)):
            devices = [devices]
        try:
            ids = [str(int(d)) for d in devices]
        except (TypeError, ValueError):
            raise ConfigError(f"launcher.devices={devices!r} must be auto, cpu, or a list of GPU ids like [0,1]") from None
        if not ids:
            raise ConfigError("launcher.devices is an empty list; use auto, cpu, or GPU ids like [0,1]")
    return [gpu for _ in range(per_device) for gpu in ids][:in_flight]


def threads_per_trial(slots: list[str], cpus: int, per_device: int = 1) -> int:
    """The cores split evenly: each device gets cpus // devices, each of its k trials a k-th of that, at least 1.
    CPU slots: ceil(in_flight / k) CPU devices of k trials each."""
    if not slots:
        return 1
    gpus = {s for s in slots if s != "cpu"}
    devices = len(gpus) if gpus else -(-len(slots) // per_device)
    return max(1, cpus // devices // per_device)
