"""Schema of the `launcher` and `tracking` groups: where trials run and where they are recorded."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

KEEP_WARM_AUTO_S = 300  # launcher.keep_warm=auto at a terminal: the warm server waits 5 minutes for the next command


def keep_warm_seconds(value: Any, interactive: bool) -> int:
    """launcher.keep_warm in seconds: `auto` is KEEP_WARM_AUTO_S for a command typed at a terminal (`interactive`),
    else 0; `off` is 0; a number is itself. Raises ValueError for anything else."""
    text = str(value).strip().lower()
    if text == "auto":
        return KEEP_WARM_AUTO_S if interactive else 0
    if text in ("off", "false", "none"):
        return 0
    seconds = float(text)
    if not 0 <= seconds < 1e9:  # nan and inf too
        raise ValueError(text)
    return int(seconds)


@dataclass
class LauncherConfig:
    name: str = "local"  # local, slurm, submitit_local
    devices: Any = "auto"  # local: auto, cpu, or a list of GPU ids
    trials_per_device: int = 1  # local: trials sharing one GPU (same CUDA_VISIBLE_DEVICES) or one CPU slot
    warm_start: Optional[bool] = None  # local: fork trials from a process that imported torch once (None: on for CPU slots)
    keep_warm: Any = "auto"  # local: keep that process this many seconds after the command (auto: 300 at a terminal with launcher=local; 0/off)
    poll_interval: float = 0.5  # seconds between polls (slurm: one squeue per interval for all jobs, >= 1 s)
    partition: Optional[str] = None  # slurm: checked against sinfo before the first submission
    account: Optional[str] = None
    qos: Optional[str] = None
    gpus_per_trial: int = 0  # --gpus-per-node of each trial's job
    cpus_per_trial: int = 1  # --cpus-per-task; also the worker's thread count
    mem_gb: Optional[float] = None  # None: the partition's default
    time_min: int = 60  # job time limit in minutes; at the limit the trial is requeued
    use_array: bool = False  # slurm: trials ready at the same moment go in as one job array
    array_parallelism: int = 16
    additional_parameters: dict[str, Any] = field(default_factory=dict)  # other submitit SLURM parameters (names checked)
    setup: list[str] = field(default_factory=list)  # shell lines run before the worker (modules, venv)
    folder: Optional[str] = None  # shared folder for job files (default: <sweep dir>/slurm)
    max_requeues: int = 3  # preemptions tolerated per trial
    resume_requeued: bool = False  # requeued trials continue from their last epoch (train.resume) instead of restarting


@dataclass
class TrackingConfig:
    name: str = "mlflow"  # mlflow or off
    uri: Optional[str] = None  # None: MLflow's default (sqlite:///<cwd>/mlflow.db); or http://host:port
    experiment: Optional[str] = None  # None: the sweep name
    log_artifacts: bool = True  # PerforatedAI CSVs/PNG, findings, report, run.yaml per trial
    request_timeout: int = 10  # seconds per HTTP call: a dead server must not stall the sweep
    max_retries: int = 1  # HTTP retries per call (MLflow's own default of 7 waits minutes)
