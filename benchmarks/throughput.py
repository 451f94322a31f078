"""Throughput: the same 8 grid points, 2 trials in flight, Hydra's Optuna sweeper vs pai-sweep.

Every side runs the same 8 grid points (max_epochs 4 or 100, so some trials take ~3x others; lr;
init scale: benchmarks/conf/sweep/bench_throughput.yaml and benchmarks/hydra_app/) with the same
environment (1 thread per slot on 2 CPU slots):
  hydra         Hydra multirun: hydra-optuna-sweeper (GridSampler, n_jobs 2: asks 2, waits for both)
                + hydra-joblib-launcher (n_jobs 2), each job running pai-sweep's worker. Installed with
                --no-deps into benchmarks/.plugins (it pins an old optuna), on PYTHONPATH for Hydra only.
  hydra_plain   the same Hydra multirun, each job running the hand-written PerforatedAI loop with the
                library's defaults (benchmarks/plain_trial.py: graphs and checkpoints every epoch), as a
                Hydra user would write it
  pai           pai-sweep lean (through benchmarks/timed_driver.py, which also times the driver's phases):
                sweep.in_flight=2, rule and derived trials off, tracking off, no integration check
  pai_defaults  pai-sweep with its defaults: the integration check, derived trials and MLflow tracking on
                (rule trials stay off: they would change which 8 trials run)
Sides alternate, round by round. Per side: wall time, the share of worker-slot time left idle (each
trial's start, launch.json, to its end, result.json written), and the floor ratio: wall / (the
trials' summed pure training seconds / slots), pure training being each epoch's training and
scoring without any bookkeeping (metrics.jsonl's compute_seconds; plain_trial.py's own sum).

    python -m benchmarks.throughput                    # 2 rounds of every side (~15-25 min on 2 busy cores)
    python -m benchmarks.throughput --sides hydra,pai  # some sides only
    python -m benchmarks.throughput --quick            # 1 round of 2 one-to-three-epoch trials
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
TARGET_DEFAULTS = 4.0  # issue 17: pai-sweep with its defaults vs Hydra with the hand-written loop
TARGET_FLOOR = 5.0  # issue 17: the lean configuration within 5x of its training floor
SIDES = ("hydra", "hydra_plain", "pai", "pai_defaults")
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


def run_side(side: str, rwork: Path, fixed: list[str], plugins: Path, hydra_extra: list[str], pai_extra: list[str]) -> dict[str, Any]:
    if side.startswith("hydra"):
        hydra_env = common.child_env(PYTHONPATH=f"{plugins}:{common.REPO}")
        cmd = [sys.executable, str(common.BENCH / "hydra_app" / "app.py"), f"base_run={rwork / 'base' / 'run.yaml'}",
               f"work={rwork / side}", f"runner={'plain' if side == 'hydra_plain' else 'worker'}", *hydra_extra]
        run = common.run_timed(cmd, cwd=rwork, env=hydra_env, log=rwork / f"{side}.log")
        common.check_ok(run, f"{side} multirun")
        dirs = sorted((rwork / side / "trials").iterdir())
        return {"seconds": run["seconds"], "cpu_seconds": run["cpu_seconds"], **slot_usage(dirs, run["start"], run["end"]),
                **common.floor_ratio(run["seconds"], dirs, SLOTS), "best_val": _best(dirs)}
    sweep_dir = rwork / side
    timings = rwork / f"{side}.timings.json"
    extra = ["tracking=off"] if side == "pai" else [
        "sweep.check_first=true", "sweep.derived_trials=true", "tracking=mlflow", f"tracking.uri=sqlite:///{rwork / 'mlflow.db'}"]
    cmd = [sys.executable, "-m", "benchmarks.timed_driver", str(timings), *fixed, common.searchpath_override(),
           "sweep=bench_throughput", f"sweep.dir={sweep_dir}", "sweep.in_flight=2", *extra, *pai_extra]
    run = common.run_timed(cmd, cwd=rwork, log=rwork / f"{side}.log")
    common.check_ok(run, side)
    dirs = sorted((sweep_dir / "trials").iterdir())
    costs = {k: v for k, v in per_trial_costs(json.loads(timings.read_text())["events"]).items() if "launch" in v}
    return {"seconds": run["seconds"], "cpu_seconds": run["cpu_seconds"], **slot_usage(dirs, run["start"], run["end"]),
            **common.floor_ratio(run["seconds"], dirs, SLOTS), "best_val": _best(dirs), "driver_ms_per_trial": costs}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = common.base_parser(__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=None, help="rounds of every side (default 2; --quick 1)")
    p.add_argument("--sides", default=None, help=f"comma-separated sides (default all: {','.join(SIDES)}; --quick hydra,pai)")
    args = p.parse_args(argv)
    rounds = args.rounds or (1 if args.quick else 2)
    sides = tuple(args.sides.split(",")) if args.sides else (("hydra", "pai") if args.quick else SIDES)
    unknown = sorted(set(sides) - set(SIDES))
    if unknown:
        p.error(f"unknown side(s) {', '.join(unknown)}; valid: {', '.join(SIDES)}")
    plugins = ensure_plugins() if any(side.startswith("hydra") for side in sides) else common.PLUGINS
    work = args.work or Path(tempfile.mkdtemp(prefix="bench_throughput_"))
    n = 2 if args.quick else 8
    fixed = [*FIXED, "data.limit=200"] if args.quick else FIXED
    hydra_extra = ["train.max_epochs=choice(1,3)", f"hydra.sweeper.n_trials={n}"] if args.quick else []
    pai_extra = [f"sweep.n_trials={n}", "sweep.space={train.max_epochs:{type:categorical,choices:[1,3]}}"] if args.quick else []
    runs: dict[str, list[dict[str, Any]]] = {side: [] for side in sides}
    with common.LoadSampler() as load:
        for r in range(rounds):
            rwork = common.fresh_dir(work / f"round{r}")
            from pai_sweep.compose import compose
            from pai_sweep.preflight import write_run_config

            write_run_config(compose(fixed), rwork / "base")
            for side in (sides if r % 2 == 0 else sides[::-1]):  # odd rounds in reverse: a load trend hits both ends
                runs[side].append(run_side(side, rwork, fixed, plugins, hydra_extra, pai_extra))
                print(f"round {r} {side}: {runs[side][-1]['seconds']:.1f} s, floor ratio {runs[side][-1]['floor_ratio']}", flush=True)
    summary = summarise(runs)
    result = {
        "benchmark": "throughput", "command": common.command_line(), "machine": common.machine_info(), "load": load.summary(),
        "quick": args.quick, "rounds": rounds, "n_trials": n, "slots": SLOTS, "fixed": fixed,
        "plugins": list(PLUGINS), "target": f"hydra wall / pai-sweep wall >= {TARGET} on uneven trials",
        "targets_issue_17": {"defaults_vs_hydra_plain": f"hydra_plain wall / pai_defaults wall >= {TARGET_DEFAULTS}",
                             "lean_floor_ratio": f"pai wall / (summed training s / {SLOTS}) <= {TARGET_FLOOR}"},
        "runs": runs, "summary": summary,
    }
    common.write_result("throughput", result, markdown(result), args.out)
    return result


def _best(dirs: list[Path]) -> float | None:
    vals = [json.loads((d / "result.json").read_text()).get("best_val") for d in dirs]
    vals = [v for v in vals if v is not None]
    return round(max(vals), 4) if vals else None


def summarise(runs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    def med(side: str, key: str) -> float | None:
        values = [r[key] for r in runs[side] if r.get(key) is not None]
        return round(statistics.median(values), 3) if values else None

    keys = ("seconds", "cpu_seconds", "busy_slot_seconds", "idle_share_trial_span", "idle_share_wall", "to_first_trial_s",
            "after_last_trial_s", "floor_s", "floor_ratio")
    out: dict[str, Any] = {side: {k: med(side, k) for k in keys} for side in runs}

    def speedup(slow: str, fast: str) -> tuple[float | None, list]:
        if slow not in runs or fast not in runs:
            return None, []
        return common.ratio(out[slow]["seconds"], out[fast]["seconds"]), [
            common.ratio(a["seconds"], b["seconds"]) for a, b in zip(runs[slow], runs[fast])]

    out["speedup"], out["speedup_per_round"] = speedup("hydra", "pai")
    out["speedup_defaults_vs_hydra_plain"], out["speedup_defaults_vs_hydra_plain_per_round"] = speedup("hydra_plain", "pai_defaults")
    bests = [{r["best_val"] for r in rs} for rs in zip(*runs.values())]
    out["same_best"] = all(len(b) == 1 for b in bests)
    out["target_met"] = bool(out["speedup"] and out["speedup"] >= TARGET)
    out["target_defaults_met"] = bool(out["speedup_defaults_vs_hydra_plain"] and out["speedup_defaults_vs_hydra_plain"] >= TARGET_DEFAULTS)
    out["target_floor_met"] = bool("pai" in runs and out["pai"]["floor_ratio"] and out["pai"]["floor_ratio"] <= TARGET_FLOOR)
    return out


def markdown(result: dict[str, Any]) -> str:
    s = result["summary"]
    sides = list(result["runs"])
    # pai-sweep's warm-started workers are forked by a forkserver it does not reap: their CPU is not counted
    rows = [[side, s[side]["seconds"], s[side]["cpu_seconds"] if side.startswith("hydra") else "-", s[side]["busy_slot_seconds"],
             s[side]["idle_share_trial_span"], s[side]["idle_share_wall"], s[side]["to_first_trial_s"], s[side]["after_last_trial_s"],
             s[side]["floor_s"], s[side]["floor_ratio"]] for side in sides]
    lengths = ", ".join(str(t) for t in result["runs"][sides[-1]][0]["trial_seconds"])
    lines = [f"Speed-up Hydra (worker) wall / pai-sweep lean wall: {s['speedup']} (per round {s['speedup_per_round']}); "
             f"target >= {TARGET}: **{'met' if s['target_met'] else 'NOT met'}**." if s["speedup"] else "",
             f"Speed-up Hydra with the hand-written loop / pai-sweep with its defaults: {s['speedup_defaults_vs_hydra_plain']} "
             f"(per round {s['speedup_defaults_vs_hydra_plain_per_round']}); target >= {TARGET_DEFAULTS}: "
             f"**{'met' if s['target_defaults_met'] else 'NOT met'}**." if s["speedup_defaults_vs_hydra_plain"] else "",
             f"pai-sweep lean floor ratio {s['pai']['floor_ratio']}; target <= {TARGET_FLOOR}: "
             f"**{'met' if s['target_floor_met'] else 'NOT met'}**." if "pai" in s else "",
             f"Same best score on every side: {s['same_best']}."]
    return (
        common.header_md("Throughput: Hydra's Optuna sweeper vs pai-sweep", result)
        + f"\n{result['n_trials']} trials, {result['slots']} in flight, {result['rounds']} round(s) (medians); fixed: "
        f"`{' '.join(result['fixed'])}`; plugins {', '.join(result['plugins'])} (--no-deps).\n"
        f"Trial lengths in round 0 ({sides[-1]} side, s): {lengths}.\n\n"
        + common.md_table(["side", "wall s", "CPU s", "busy slot-s", "idle share (trial span)", "idle share (wall)",
                           "s to first trial", "s after last trial", "floor s", "floor ratio"], rows)
        + "\n\nCPU s: the command and every process it waited for (none for pai-sweep: its warm-started workers are "
        "forked by a forkserver it does not reap). Busy slot-s: the sum of the trials' spans, launch to result.json. "
        f"Floor s: the trials' summed pure training seconds / {result['slots']} slots; floor ratio: wall / floor.\n\n"
        + "\n".join(line for line in lines if line) + "\n"
    )


if __name__ == "__main__":
    main()
