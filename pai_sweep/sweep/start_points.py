"""Where a trial starts: from epoch 0, from a branch point another trial of the sweep left, or (a trial run
again after Ctrl-C or a driver restart) from its earlier attempt's last finished epoch.

It sets the run.yaml keys the worker reads (train.resume, train.branch_point, train.start_from; the worker
checks the start point again and trains from epoch 0, saying why, when it does not fit) and returns the
Optuna user attrs that record the plan (docs/sweeps.md, "Branching and continuing").
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

from omegaconf import OmegaConf

from pai_sweep import branching
from pai_sweep.trial_files import RESUME_FILE, RUN_CONFIG, read_yaml


def _trial_dirs(sweep_dir: Path) -> Iterator[tuple[int, Path]]:
    """The sweep's trial folders in trial order (branch points of earlier sessions count too)."""
    found = []
    for path in (Path(sweep_dir) / "trials").glob("*"):
        if path.name.isdigit():
            found.append((int(path.name), path))
    return iter(sorted(found))


def plan_start(cfg: Any, sweep_dir: Path, run_yaml: Any, baseline: bool, earlier_attempt: Path | None,
               known: dict[str, dict] | None = None) -> dict[str, Any]:
    """Fill run_yaml's start keys for one trial; returns the user attrs to record (empty: from epoch 0).
    `known`: the start points found so far (branching.find_parent), kept by the caller across launches."""
    if cfg.launcher.get("resume_requeued"):
        run_yaml.train.resume = True  # a resume point every epoch: an interrupted trial continues where it was
    branching_on = cfg.sweep.get("branching", "auto") != "off" and not baseline and run_yaml.dendrites.enabled
    # its states before the first switch, after each switch and at its cap may serve later trials (also a continued one's)
    run_yaml.train.branch_point = bool(branching_on)
    run_yaml.train.later_points = cfg.sweep.get("branching", "auto") != "first"
    if earlier_attempt is not None and (earlier_attempt / RESUME_FILE).exists():  # saved every epoch, or when stopped
        run_yaml.train.start_from = str(earlier_attempt)
        return {"continues": int(earlier_attempt.name) if earlier_attempt.name.isdigit() else str(earlier_attempt)}
    if not branching_on:
        return {}
    found = branching.find_parent(_trial_dirs(sweep_dir), OmegaConf.to_container(run_yaml, resolve=True), known)
    if found is None:
        return {}
    number, point, epoch = found
    run_yaml.train.start_from = str(point)
    return {"branched_from": number, "branch_epoch": epoch}


def prefix_in_training(cfg: Any, space_keys: list[str], base_run: dict, sweep_dir: Path, running: list[tuple[int, Path]],
                       known: dict[str, dict] | None = None) -> int | None:
    """The running trial (number) to wait for before the next sampler trial starts, else None: when every sampler
    trial of this sweep shares its neuron phase (the space holds post-switch dendrite knobs only; `base_run` is the
    sweep's run config without them), no start point serves it yet, and a running trial trains that phase and will
    keep its state before the first switch. Started now, the next trial would train that phase again; started
    once that trial keeps a point (or has ended), it begins from there."""
    if cfg.sweep.get("branching", "auto") == "off" or not branching.post_switch_only(space_keys):
        return None
    signature = branching.prefix_signature(base_run)
    if signature is None or branching.find_parent(_trial_dirs(sweep_dir), base_run, known) is not None:
        return None  # no dendrites, or a point serves already: the next trial starts from it
    for number, folder in running:
        run = read_yaml(folder / RUN_CONFIG)  # the resolved run spec the driver wrote ({} when unreadable)
        train = run.get("train") or {}
        start = train.get("start_from")
        if not train.get("branch_point") or (start and branching.branch_info(Path(start)) is not None):
            continue  # keeps no points (or no readable run.yaml), or started from another's point: not training the phase
        if any(branching.branch_info(p) for p in branching.point_dirs(folder)):
            continue  # it kept a point that does not serve (another cap, a later state): waiting gains nothing
        if branching.prefix_signature(run) == signature:
            return number
    return None
