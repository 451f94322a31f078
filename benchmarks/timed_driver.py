"""`pai-sweep [OVERRIDES]` with the driver's phases timed: what the driver itself costs per trial.

    python -m benchmarks.timed_driver TIMINGS_JSON [OVERRIDES...]

Runs the real CLI in this process after wrapping the driver's phase functions with timers
(each wrapper adds a few microseconds); writes every phase call, with its trial number,
start and end, to TIMINGS_JSON. Phases:
  compose        the CLI composes and validates the config
  launch         ask Optuna, write run.yaml, start the worker (SweepLoop._launch)
  detect         result.json written by the worker -> the driver notices (poll interval)
  analysis       read result.json and the PerforatedAI output, findings, objective (the evaluate the driver hands the loop)
  tell           study.tell and the progress line (SweepLoop._tell minus the two below)
  tracking       hand the trial to the MLflow thread (SweepLoop._track; logging runs in the background)
  feedback       derived and rule-recommended trials (SweepLoop._feedback)
  sweep_start    from the CLI's start to the first launch (config, folder, study, tracking, launcher)
  sweep_end      summary.json, the report, tracking's finish (waits for the MLflow thread)
"""

from __future__ import annotations

import functools
import json
import sys
import time
from pathlib import Path

T_START = time.time()

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

EVENTS: list[dict] = []


def _record(name: str, trial, t0: float, t1: float) -> None:
    EVENTS.append({"phase": name, "trial": trial, "start": t0, "end": t1, "ms": round((t1 - t0) * 1000, 3)})


def _timed(name: str, fn, trial_of=None):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        t0 = time.time()
        try:
            return fn(*args, **kwargs)
        finally:
            _record(name, trial_of(*args, **kwargs) if trial_of else None, t0, time.time())

    return wrapper


def install() -> None:
    from pai_sweep import driver
    from pai_sweep.cli import sweep as cli_sweep
    from pai_sweep.compose import compose as real_compose
    from pai_sweep.sweep import loop
    from pai_sweep.trial_files import RESULT

    cli_sweep_compose = _timed("compose", real_compose)
    import pai_sweep.compose as compose_mod

    compose_mod.compose = cli_sweep_compose  # sweep_command imports it at call time

    SL = loop.SweepLoop
    real_launch = SL._launch

    def launch(self):
        t0 = time.time()
        before = set(self.running)
        try:
            return real_launch(self)
        finally:
            new = sorted(set(self.running) - before)
            _record("launch", new[0] if new else None, t0, time.time())

    SL._launch = launch
    driver.evaluate = _timed("analysis", driver.evaluate, lambda trial_dir, *a, **k: Path(trial_dir).name)  # the loop gets it from the driver
    SL._track = _timed("tracking", SL._track, lambda self, frozen, *a, **k: frozen.number)
    SL._feedback = _timed("feedback", SL._feedback, lambda self, run, *a, **k: run.number)
    SL._tell = _timed("tell_total", SL._tell, lambda self, run, *a, **k: run.number)
    real_finish = SL._finish

    def finish(self, run, result, returncode):
        now = time.time()
        path = run.trial_dir / RESULT
        if path.exists():  # the worker's last write: how long until the driver noticed it
            _record("detect", run.number, path.stat().st_mtime, now)
        return real_finish(self, run, result, returncode)

    SL._finish = finish
    real_run = driver.run_sweep

    def run_sweep(cfg, *a, **k):
        real_loop_run = SL.run

        def loop_run(self):
            _record("sweep_start", None, T_START, time.time())
            try:
                return real_loop_run(self)
            finally:
                EVENTS.append({"phase": "_loop_end", "trial": None, "start": time.time(), "end": time.time(), "ms": 0})

        SL.run = loop_run
        try:
            return real_run(cfg, *a, **k)
        finally:
            SL.run = real_loop_run
            end = [e for e in EVENTS if e["phase"] == "_loop_end"]
            if end:
                _record("sweep_end", None, end[-1]["start"], time.time())

    driver.run_sweep = run_sweep


def main(argv: list[str]) -> int:
    out, overrides = Path(argv[0]), argv[1:]
    install()
    from pai_sweep.cli import main as cli_main

    try:
        code = cli_main(overrides)
    finally:
        out.write_text(json.dumps({"t_start": T_START, "t_end": time.time(), "events": [e for e in EVENTS if not e["phase"].startswith("_")]}, indent=1))
    return code


def per_trial_costs(events: list[dict]) -> dict[str, dict[str, float]]:
    """Per trial: ms in each phase; tell = tell_total - tracking - feedback (they run inside it)."""
    trials: dict[str, dict[str, float]] = {}
    for e in events:
        if e["trial"] is None or e["phase"] in ("sweep_start", "sweep_end", "compose"):
            continue
        key = str(e["trial"])
        trials.setdefault(key, {}).setdefault(e["phase"], 0.0)
        trials[key][e["phase"]] += e["ms"]
    for t in trials.values():
        if "tell_total" in t:
            t["tell"] = round(t.pop("tell_total") - t.get("tracking", 0.0) - t.get("feedback", 0.0), 3)
    return trials


if __name__ == "__main__":
    from pai_sweep.cli.entry import exit_now

    exit_now(main(sys.argv[1:]))  # as the `pai-sweep` console script ends (pai_sweep/cli/entry.py)
