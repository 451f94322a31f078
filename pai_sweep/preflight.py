"""The capacity test: can dendrites be added to this model at all? Seconds, before a sweep spends hours.

Runs the worker with PerforatedAI's testing_dendrite_capacity mode (a dendrite every epoch,
complete after 3) on a few batches per epoch, in a subprocess and a scratch folder, and
reports what happened in plain words.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from pai_sweep.launchers.processes import WorkerRun, no_result
from pai_sweep.trial_files import RESULT, RUN_CONFIG, WORKER_LOG, read_metrics

CAPACITY_DENDRITES = 3  # what the library's smoke test adds before it completes


def write_run_config(run_cfg: Any, trial_dir: Path, **train_overrides: Any) -> None:
    """run.yaml with the worker's groups (model, downsize, dendrites, data, train) of a composed config."""
    from omegaconf import OmegaConf

    from pai_sweep.schema.run import run_dict

    groups = run_dict(run_cfg if hasattr(run_cfg, "_metadata") else OmegaConf.create(run_cfg))  # as the sweep writes it
    groups["train"].update(train_overrides)
    trial_dir.mkdir(parents=True, exist_ok=True)
    (trial_dir / RUN_CONFIG).write_text(OmegaConf.to_yaml(OmegaConf.create(groups)))


def capacity_test(
    run_cfg: Any,
    epochs_limit: int = 6,
    batches: int = 4,
    timeout: float = 300.0,
    workdir: str | Path | None = None,
) -> dict[str, Any]:
    """Run the 3-dendrite smoke test on the configured model; returns a dict with a plain `verdict`.

    Keys: ok (3 dendrites were added), dendrites, params (list, index = dendrite count),
    seconds_per_epoch, epochs, seconds, status, reason, verdict, folder (kept when workdir is given),
    start (warm: forked from the warm worker server, as on a CPU; fresh: its own process, as for CUDA).
    """
    scratch = None
    if workdir is None:
        scratch = tempfile.TemporaryDirectory(prefix="pai-sweep-check-")
        folder = Path(scratch.name)
    else:
        folder = Path(workdir)
    try:
        return _run(run_cfg, folder, epochs_limit, batches, timeout)
    finally:
        if scratch is not None:
            scratch.cleanup()


def can_run_warm(run_cfg: Any) -> bool:
    """The capacity test may fork from the warm worker server (launchers/warm.py) when it trains on the CPU:
    a CUDA run needs a fresh process (CUDA must not be initialised before a fork)."""
    from pai_sweep.launchers.devices import visible_gpus

    device = str(run_cfg.train.device) if "train" in run_cfg else "auto"
    return device == "cpu" or (device == "auto" and not visible_gpus())


def warm_up(run_cfg: Any) -> bool:
    """Boot the warm worker server now (its imports run in the background) if the capacity test will use it."""
    if not can_run_warm(run_cfg):
        return False
    from pai_sweep.launchers.warm import plan_preload, prestart

    plan_preload(run_cfg)
    prestart()
    return True


def _run(run_cfg: Any, folder: Path, epochs_limit: int, batches: int, timeout: float) -> dict[str, Any]:
    write_run_config(run_cfg, folder, max_epochs=int(epochs_limit), graphs="end", test_saves=False)
    (folder / RESULT).unlink(missing_ok=True)  # a fresh test, never an older answer
    start = time.time()
    args = ["--capacity-test", "--max-batches", str(int(batches))]
    warm = can_run_warm(run_cfg)
    spawn = None  # a fresh process (spawn_worker), as for CUDA
    if warm:  # forked from the server that also starts the sweep's trials: no imports to wait for
        from pai_sweep.launchers.warm import spawn_warm

        spawn = spawn_warm
    worker = WorkerRun.start(folder, spawn, extra_args=args)
    code = worker.wait(timeout=timeout)
    if code is None:  # still running: killed, no grace
        worker.stop(grace=0, kill_wait=None)
    seconds = round(time.time() - start, 2)
    records = read_metrics(folder)
    result = worker.result()
    by_count: dict[int, int] = {}
    if result is not None and result.base_params:
        by_count[0] = int(result.base_params)
    for rec in records:  # the first parameter count seen at each dendrite count
        if rec.params is not None:
            by_count.setdefault(int(rec.dendrites), int(rec.params))
    params = [by_count[k] for k in sorted(by_count)]
    dendrites = max((r.dendrites for r in records), default=0)
    times = [r.seconds for r in records[1:]] or [r.seconds for r in records]
    report: dict[str, Any] = {
        "ok": False,
        "dendrites": dendrites,
        "params": params,
        "seconds_per_epoch": round(sum(times) / len(times), 3) if times else None,
        "epochs": len(records),
        "seconds": seconds,
        "status": result.status if result else "failed",
        "reason": result.reason if result else "",
        "folder": str(folder),
        "start": "warm" if warm else "fresh",  # forked from the warm worker server, or a fresh process
    }
    if code is None:
        report["reason"] = f"the capacity test did not finish in {timeout:.0f} s (see {folder / WORKER_LOG})"
        report["verdict"] = f"FAILED: {report['reason']}"
    elif result is None:
        report["reason"] = f"{no_result(code)}; see {folder / WORKER_LOG}"
        report["verdict"] = f"FAILED: {report['reason']}"
    elif result.status != "complete":
        # a data problem stops any training, with or without dendrites: say so instead of blaming the dendrites
        what = "the data cannot be read" if str(result.reason).startswith("data") else "dendrites cannot be added as configured"
        report["verdict"] = f"FAILED: {what}: {result.reason}"
    elif dendrites >= CAPACITY_DENDRITES:
        report["ok"] = True
        grown = " -> ".join(f"{p:,}" for p in params)
        report["verdict"] = (
            f"OK: {dendrites} dendrites added (parameters {grown}), "
            f"{report['seconds_per_epoch']} s per epoch on {batches} batches"
        )
    else:
        report["verdict"] = (
            f"FAILED: only {dendrites} of {CAPACITY_DENDRITES} dendrites were added in {len(records)} epochs "
            f"({result.reason}); raise epochs_limit or check which modules are perforated"
        )
    return report
