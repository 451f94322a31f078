"""Schema of the `launcher` and `tracking` groups: where trials run and where they are recorded."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional


@dataclass
class LauncherConfig:
    name: str = "local"  # local, slurm, submitit_local
    devices: Any = "auto"  # local: auto, cpu, or a list of GPU ids (one trial per GPU)
    poll_interval: float = 0.5  # seconds between polls (slurm: raise it, the scheduler is shared)
    partition: Optional[str] = None
    account: Optional[str] = None
    qos: Optional[str] = None
    gpus_per_trial: int = 0
    cpus_per_trial: int = 1
    mem_gb: Optional[float] = None
    time_min: int = 60  # job time limit in minutes
    use_array: bool = False  # submit batches as job arrays
    array_parallelism: int = 16
    additional_parameters: dict[str, Any] = field(default_factory=dict)  # extra sbatch options
    setup: list[str] = field(default_factory=list)  # shell lines run before the worker (modules, venv)
    folder: Optional[str] = None  # shared folder for job files (default: <sweep dir>/slurm)
    max_requeues: int = 3  # preemptions tolerated per trial


@dataclass
class TrackingConfig:
    name: str = "mlflow"  # mlflow or off
    uri: Optional[str] = None  # None: MLflow's default (sqlite:///<cwd>/mlflow.db); or http://host:port
    experiment: Optional[str] = None  # None: the sweep name
    log_artifacts: bool = True  # PerforatedAI CSVs/PNG, findings, report, run.yaml per trial
    request_timeout: int = 10  # seconds per HTTP call: a dead server must not stall the sweep
    max_retries: int = 1  # HTTP retries per call (MLflow's own default of 7 waits minutes)
