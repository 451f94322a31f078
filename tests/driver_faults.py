"""A train.train_fn for driver tests that injects faults into chosen trials, run by the real worker.

PAI_SWEEP_FAULTS="0:crash,1:hang,3:bad" keys on the trial's launch order (the rank of its folder
among trials/<n>/: derived trials get numbers but no folder). Every other trial trains normally
with the built-in loop. Actions: crash (raise), hang (sleep), nan (report NaN), bad (scores stay at
chance, one epoch a second, so a pruner sees it lose), slow (normal training after a pause), paced (normal
training, PAI_SWEEP_PACE_S seconds of sleep before each epoch's report: time to interrupt it mid-run).
"""

from __future__ import annotations

import os
import time
from pathlib import Path


def launch_index() -> int:
    here = Path.cwd()
    if not here.name.isdigit():
        return -1  # not a sweep trial (the driver's one-off capacity test): train normally
    numbers = sorted(int(p.name) for p in here.parent.iterdir() if p.is_dir() and p.name.isdigit())
    return numbers.index(int(here.name))


def action() -> str:
    faults = dict(item.split(":") for item in os.environ.get("PAI_SWEEP_FAULTS", "").split(",") if ":" in item)
    return faults.get(str(launch_index()), "ok")


def train(session, data) -> None:
    from omegaconf import OmegaConf

    from pai_sweep.train_loop import classification_loop

    what = action()
    print(f"driver_faults: launch {launch_index()} -> {what}", flush=True)
    if what == "crash":
        raise RuntimeError("injected crash")
    if what == "hang":
        time.sleep(3600)
    if what == "nan":
        session.report(float("nan"))
    if what == "bad":
        session.optimizer()  # PerforatedAI steps the optimizer's scheduler at a switch
        while True:
            time.sleep(1.0)
            model, restructured, complete = session.report(5.0, train=5.0, test=5.0, loss=2.3)
            if complete or session.epoch >= session.max_epochs:
                return
            if restructured:
                session.optimizer()
    if what == "slow":
        time.sleep(float(os.environ.get("PAI_SWEEP_SLOW_S", "3")))
    if what == "paced":
        report, pace = session.report, float(os.environ.get("PAI_SWEEP_PACE_S", "0.5"))

        def paced_report(*args, **kwargs):
            time.sleep(pace)
            return report(*args, **kwargs)

        session.report = paced_report
    classification_loop(session, data, OmegaConf.load("run.yaml").train)
