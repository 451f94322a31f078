"""Schema of the `train` group: optimizer, scheduler, loop limits, device."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional


@dataclass
class OptimizerConfig:
    type: str = "Adam"  # a torch.optim class name or an import path
    args: dict[str, Any] = field(default_factory=lambda: {"lr": 0.01})


@dataclass
class SchedulerConfig:
    type: Optional[str] = "ReduceLROnPlateau"  # torch.optim.lr_scheduler class name, import path, or null
    args: dict[str, Any] = field(default_factory=lambda: {"mode": "max", "patience": 2})


@dataclass
class TrainConfig:
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)  # kept exactly, rebuilt after restructures
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    batch_size: int = 64
    max_epochs: int = 60  # cap: PerforatedAI's own completion usually ends training first
    device: str = "auto"  # auto, cpu, cuda, cuda:N
    seed: int = 0  # model init and data order
    loss: str = "cross_entropy"  # cross_entropy, mse, or an import path
    train_fn: Optional[str] = None  # import path of your own training function (docs/custom_loop.md)
    graphs: str = "end"  # end: draw PerforatedAI's PNG once at the end (CSVs every epoch); every_epoch: library default
    test_saves: bool = True  # PerforatedAI's extra checkpoints (its learning-rate search reloads some)
    resume: bool = False  # save a resume point every epoch; a re-run (SLURM requeue) continues exactly from it
    branch_point: bool = False  # keep start points (branch/, branch-after-switch-<k>/, branch-at-cap/) for trials that share a prefix
    later_points: bool = True  # with branch_point: also the ones after each switch and at the cap (sweep.branching=first: no)
    start_from: Optional[str] = None  # a start point (trials/N/branch*) or an interrupted trial folder to continue from
