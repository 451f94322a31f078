"""Throughput: the same 8 grid points, 2 trials in flight, Hydra's Optuna sweeper vs pai-sweep.

Both sides run the same pai-sweep worker per trial with the same environment (1 thread per
slot on 2 CPU slots) over the same grid (max_epochs 4 or 100, so some trials take ~3x others;
lr; init scale): benchmarks/conf/sweep/bench_throughput.yaml and benchmarks/hydra_app/.
  hydra   Hydra multirun: hydra-optuna-sweeper (GridSampler, n_jobs 2: asks 2, waits for both)
          + hydra-joblib-launcher (n_jobs 2). Installed with --no-deps into benchmarks/.plugins
          (it pins an old optuna) and put on PYTHONPATH for this side only.
  pai     pai-sweep (through benchmarks/timed_driver.py, which also times the driver's phases),
          sweep.in_flight=2, rule and derived trials off, tracking off, no integration check.
Sides alternate, round by round. Per side: wall time and the share of worker-slot time left
idle, from each trial's start (launch.json) and end (result.json written).

    python -m benchmarks.throughput            # 2 rounds (~6-10 min on 2 busy cores)
    python -m benchmarks.throughput --quick    # 1 round of 2 one-to-three-epoch trials
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import common
from benchmarks.timed_driver import per_trial_costs

TARGET = 1.25
PLUGINS = ("hydra-optuna-sweeper==1.3.0", "hydra-joblib-launcher==1.2.0")
FIXED = ["model=small_cnn", "data=digits", "train.device=cpu", "train.seed=0", "dendrites.max_dendrites=5",
         "dendrites.n_epochs_to_switch=3", "dendrites.improvement_threshold=0.0"]
SLOTS = 2


def ensure_plugins() -> Path:
    """hydra-optuna-sweeper and hydra-joblib-launcher in a private folder (never on the tool's own path)."""
    marker = common.PLUGINS / "hydra_plugins" / "hydra_optuna_sweeper"
    if not (marker.exists() and (common.PLUGINS / "hydra_plugins" / "hydra_joblib_launcher").exists()):
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(common.PLUGINS), *PLUGINS],
                       check=True)
    return common.PLUGINS


def slot_usage(trial_dirs: list[Path], t0: float, t1: float) -> dict[str, Any]:
    spans = []
    for d in trial_dirs:
        start = json.loads((d / "launch.json").read_text())["start_time"]
        spans.append((start, (d / "result.json").stat().st_mtime))
    busy = sum(e - s for s, e in spans)
    first, last = min(s for s, _ in spans), max(e for _, e in spans)
    return {
        "trials": len(spans),
        "busy_slot_seconds": round(busy, 2),
        "trial_seconds": sorted(round(e - s, 2) for s, e in spans),
        "idle_share_trial_span": round(1 - busy / (SLOTS * (last - first)), 3),  # first trial start -> last trial end
        "idle_share_wall": round(1 - busy / (SLOTS * (t1 - t0)), 3),  # the whole command, start-up included
        "to_first_trial_s": round(first - t0, 2),
        "after_last_trial_s": round(t1 - last, 2),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = common.base_parser(__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=None, help="rounds of both sides (default 2; --quick 1)")
    args = p.parse_args(argv)
    rounds = args.rounds or (1 if args.quick else 2)
    plugins = ensure_plugins()
    work = args.work or Path(tempfile.mkdtemp(prefix="bench_throughput_"))
    n = 2 if args.quick else 8
    fixed = [*FIXED, "data.limit=200"] if args.quick else FIXED
    hydra_extra = ["train.max_epochs=choice(1,3)", f"hydra.sweeper.n_trials={n}"] if args.quick else []
    pai_extra = [f"sweep.n_trials={n}", "sweep.space={train.max_epochs:{type:categorical,choices:[1,3]}}"] if args.quick else []
    runs: dict[str, list[dict[str, Any]]] = {"hydra": [], "pai": []}
    with common.LoadSampler() as load:
        for r in range(rounds):
            rwork = common.fresh_dir(work / f"round{r}")
            from pai_sweep.compose import compose
            from pai_sweep.preflight import write_run_config

            write_run_config(compose(fixed), rwork / "base")
            hydra_env = common.child_env(PYTHONPATH=f"{plugins}:{common.REPO}")
            cmd = [sys.executable, str(common.BENCH / "hydra_app" / "app.py"), f"base_run={rwork / 'base' / 'run.yaml'}",
                   f"work={rwork / 'hydra'}", *hydra_extra]
            run = common.run_timed(cmd, cwd=rwork, env=hydra_env, log=rwork / "hydra.log")
            common.check_ok(run, "hydra multirun")
            dirs = sorted((rwork / "hydra" / "trials").iterdir())
            runs["hydra"].append({"seconds": run["seconds"], "cpu_seconds": run["cpu_seconds"],
                                  **slot_usage(dirs, run["start"], run["end"]), "best_val": _best(dirs)})
            print(f"round {r} hydra: {run['seconds']:.1f} s", flush=True)
            sweep_dir = rwork / "pai"
            timings = rwork / "pai.timings.json"
            cmd = [sys.executable, "-m", "benchmarks.timed_driver", str(timings), *fixed, common.searchpath_override(),
                   "sweep=bench_throughput", f"sweep.dir={sweep_dir}", "sweep.in_flight=2", "tracking=off", *pai_extra]
            run = common.run_timed(cmd, cwd=rwork, log=rwork / "pai.log")
            common.check_ok(run, "pai-sweep")
            dirs = sorted((sweep_dir / "trials").iterdir())
            costs = {k: v for k, v in per_trial_costs(json.loads(timings.read_text())["events"]).items() if "launch" in v}
            runs["pai"].append({"seconds": run["seconds"], "cpu_seconds": run["cpu_seconds"],
                                **slot_usage(dirs, run["start"], run["end"]), "best_val": _best(dirs), "driver_ms_per_trial": costs})
            print(f"round {r} pai: {run['seconds']:.1f} s", flush=True)
    summary = summarise(runs)
    result = {
        "benchmark": "throughput", "command": common.command_line(), "machine": common.machine_info(), "load": load.summary(),
        "quick": args.quick, "rounds": rounds, "n_trials": n, "slots": SLOTS, "fixed": fixed,
        "plugins": list(PLUGINS), "target": f"hydra wall / pai-sweep wall >= {TARGET} on uneven trials",
        "runs": runs, "summary": summary,
    }
    common.write_result("throughput", result, markdown(result), args.out)
    return result


def _best(dirs: list[Path]) -> float | None:
    vals = [json.loads((d / "result.json").read_text()).get("best_val") for d in dirs]
    vals = [v for v in vals if v is not None]
    return round(max(vals), 4) if vals else None


def summarise(runs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    def med(side: str, key: str) -> float:
        return round(statistics.median(r[key] for r in runs[side]), 3)

    keys = ("seconds", "cpu_seconds", "busy_slot_seconds", "idle_share_trial_span", "idle_share_wall", "to_first_trial_s", "after_last_trial_s")
    out: dict[str, Any] = {side: {k: med(side, k) for k in keys} for side in runs}
    out["speedup"] = common.ratio(out["hydra"]["seconds"], out["pai"]["seconds"])
    out["speedup_per_round"] = [common.ratio(h["seconds"], p["seconds"]) for h, p in zip(runs["hydra"], runs["pai"])]
    out["same_best"] = all(h["best_val"] == p["best_val"] for h, p in zip(runs["hydra"], runs["pai"]))
    out["target_met"] = bool(out["speedup"] and out["speedup"] >= TARGET)
    return out


def markdown(result: dict[str, Any]) -> str:
    s = result["summary"]
    # pai-sweep's warm-started workers are forked by a forkserver the driver does not reap: their CPU is not counted
    rows = [[side, s[side]["seconds"], s[side]["cpu_seconds"] if side == "hydra" else "-", s[side]["busy_slot_seconds"], s[side]["idle_share_trial_span"],
             s[side]["idle_share_wall"], s[side]["to_first_trial_s"], s[side]["after_last_trial_s"]] for side in ("hydra", "pai")]
    verdict = "met" if s["target_met"] else "NOT met"
    lengths = ", ".join(str(t) for t in result["runs"]["pai"][0]["trial_seconds"])
    return (
        common.header_md("Throughput: Hydra's Optuna sweeper vs pai-sweep", result)
        + f"\n{result['n_trials']} trials, {result['slots']} in flight, {result['rounds']} round(s) (medians); fixed: "
        f"`{' '.join(result['fixed'])}`; plugins {', '.join(result['plugins'])} (--no-deps).\n"
        f"Trial lengths in round 0 (pai side, s): {lengths}.\n\n"
        + common.md_table(["side", "wall s", "CPU s", "busy slot-s", "idle share (trial span)", "idle share (wall)",
                           "s to first trial", "s after last trial"], rows)
        + "\n\nCPU s: the command and every process it waited for (none for pai-sweep: its warm-started workers are "
        "forked by a forkserver it does not reap). Busy slot-s: the sum of the trials' spans, launch to result.json.\n"
        + f"\nSpeed-up (Hydra wall / pai-sweep wall): {s['speedup']} (per round {s['speedup_per_round']}); "
        f"target >= {TARGET}: **{verdict}**. Same best score on both sides: {s['same_best']}.\n"
    )


if __name__ == "__main__":
    main()
