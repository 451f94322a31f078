"""Start-up: `pai-sweep --help`, and from `pai-sweep` starting to its first trial's worker start and first epoch.

Variants of a one-trial sweep on the defaults (digits, small CNN), interleaved rep by rep:
  defaults        the integration check (sweep.check_first) and MLflow tracking on, as a user gets them
  no_check        sweep.check_first=false (the check runs once per sweep folder)
  no_check_no_mlflow  also tracking=off
  kept_first      no_check with launcher.keep_warm=120: the first command starts the kept warm server
  kept_next       the same command again: its trial forks from the server the first one left
(and `pai-sweep check` once more while that server runs: check_kept). The kept server lives in a socket folder
of the benchmark's own and is stopped at the end of each rep, so every rep starts it cold.
Times come from polling the sweep folder every 10 ms: launch.json (the worker's start time as
the launcher records it) and the first line of metrics.jsonl (the first epoch done). Floor ratio:
the whole sweep's wall over its trial's pure training seconds (metrics.jsonl's compute_seconds).
Also `pai-sweep check` on the default small CNN (1,418 parameters): its wall time, the capacity
test's (check.json), and the same command's imports alone (a process importing what the check
imports: hydra's compose, torch, scikit-learn, pai-sweep's check), so "after imports" = check - imports.

    python -m benchmarks.startup            # 3 reps (~3 min)
    python -m benchmarks.startup --quick    # 1 rep of --help and of the fastest variant
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import common

VARIANTS = {
    "defaults": [],
    "no_check": ["sweep.check_first=false"],
    "no_check_no_mlflow": ["sweep.check_first=false", "tracking=off"],
}
KEPT = ["sweep.check_first=false", "launcher.keep_warm=120"]
KEPT_VARIANTS = {"kept_first": KEPT, "kept_next": KEPT}
TRIAL = ["sweep.n_trials=1", "sweep.in_flight=1", "train.max_epochs=2"]


CHECK_IMPORTS = ("import pai_sweep.cli, pai_sweep.compose, torch, sklearn.model_selection, sklearn.datasets, pai_sweep.check.verdict, "
                 "pai_sweep.check.auto, pai_sweep.models.build, pai_sweep.data.loaders")


def time_check(work: Path, extra: list[str] = (), env: dict[str, str] | None = None, out_name: str = "check") -> dict[str, Any]:
    out = work / out_name
    run = common.run_timed([*common.pai_sweep_cmd(), "check", "--out", str(out), *extra], cwd=work, log=work / f"{out_name}.log",
                           env=env)
    common.check_ok(run, "pai-sweep check")
    capacity = json.loads((out / "check.json").read_text()).get("capacity") or {}
    imports = common.run_timed([sys.executable, "-c", CHECK_IMPORTS], cwd=work)
    return {"check_s": run["seconds"], "capacity_test_s": capacity.get("wall_seconds"), "capacity_start": capacity.get("start"),
            "imports_s": imports["seconds"], "after_imports_s": round(run["seconds"] - imports["seconds"], 3)}


def time_help() -> float:
    return common.run_timed([*common.pai_sweep_cmd(), "--help"], cwd=Path(tempfile.gettempdir()))["seconds"]


def stop_kept(sockets: Path) -> None:
    from pai_sweep.launchers.processes import wait_gone
    from pai_sweep.launchers.warm_client import stop

    wait_gone([pid for pid in map(stop, sockets.glob("*.sock")) if pid], 30)


def first_trial(work: Path, name: str, extra: list[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    sweep_dir = work / name
    cmd = [*common.pai_sweep_cmd(), *TRIAL, *extra, f"sweep.name={name}", f"sweep.dir={sweep_dir}"]
    trial = sweep_dir / "trials" / "0"
    seen: dict[str, float] = {}
    t0 = time.time()
    with open(work / f"{name}.log", "w") as log:
        proc = subprocess.Popen(cmd, cwd=work, env=env or common.child_env(), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        while proc.poll() is None:
            now = time.time()
            if "launch" not in seen and (trial / "launch.json").exists():
                seen["launch"] = now
            if "epoch" not in seen and (trial / "metrics.jsonl").exists() and (trial / "metrics.jsonl").stat().st_size:
                seen["epoch"] = now
            time.sleep(0.01)
    t1 = time.time()
    if proc.returncode != 0:
        raise RuntimeError(f"sweep {name} exited with {proc.returncode}; see {work / f'{name}.log'}")
    worker_start = json.loads((trial / "launch.json").read_text())["start_time"]
    first = json.loads((trial / "metrics.jsonl").read_text().splitlines()[0])
    epoch_at = seen.get("epoch", (trial / "metrics.jsonl").stat().st_mtime)
    return {
        "to_worker_start_s": round(worker_start - t0, 3),
        "to_first_epoch_s": round(epoch_at - t0, 3),
        "worker_start_to_first_epoch_s": round(epoch_at - worker_start, 3),
        "first_epoch_s": first["seconds"],  # training + scoring + PerforatedAI's bookkeeping of epoch 0
        "total_s": round(t1 - t0, 3),
        **common.floor_ratio(round(t1 - t0, 3), [trial], slots=1),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = common.base_parser(__doc__.splitlines()[0])
    p.add_argument("--reps", type=int, default=None, help="repetitions (default 3; --quick 1)")
    args = p.parse_args(argv)
    reps = args.reps or (1 if args.quick else 3)
    variants = {"no_check_no_mlflow": [*VARIANTS["no_check_no_mlflow"], "data.limit=200"]} if args.quick else VARIANTS
    kept = {} if args.quick else KEPT_VARIANTS
    work = args.work or Path(tempfile.mkdtemp(prefix="bench_startup_"))
    work.mkdir(parents=True, exist_ok=True)
    helps: list[float] = []
    checks: list[dict[str, Any]] = []
    kept_checks: list[dict[str, Any]] = []
    runs: dict[str, list[dict[str, Any]]] = {v: [] for v in [*variants, *kept]}
    sockets = work / "sockets"
    kept_env = common.child_env(PAI_SWEEP_WARM_DIR=str(sockets))
    with common.LoadSampler() as load:
        for r in range(reps):
            helps.append(time_help())
            rdir = common.fresh_dir(work / f"r{r}")
            if not args.quick:
                checks.append(time_check(rdir))
                print(f"rep {r} check: {checks[-1]['check_s']:.1f} s ({checks[-1]['after_imports_s']:.1f} s after imports)", flush=True)
            for name, extra in variants.items():
                runs[name].append(first_trial(rdir, name, extra))
                print(f"rep {r} {name}: first epoch after {runs[name][-1]['to_first_epoch_s']:.1f} s", flush=True)
            try:
                for name, extra in kept.items():
                    runs[name].append(first_trial(rdir, name, extra, env=kept_env))
                    print(f"rep {r} {name}: worker start after {runs[name][-1]['to_worker_start_s']:.2f} s", flush=True)
                if kept:
                    # same folder as the sweeps: `python -m pai_sweep` puts it first on sys.path, part of the server's key
                    kept_checks.append(time_check(rdir, ["launcher.keep_warm=120"], env=kept_env, out_name="check_kept"))
                    print(f"rep {r} check with the kept server: {kept_checks[-1]['check_s']:.2f} s", flush=True)
            finally:
                stop_kept(sockets)
    summary = {"help_s": round(statistics.median(helps), 3),
               **{name: {k: round(statistics.median(x[k] for x in rs), 3) for k in rs[0] if all(x[k] is not None for x in rs)}
                  for name, rs in runs.items()}}
    for key, found in (("check", checks), ("check_kept", kept_checks)):
        if found:
            summary[key] = {k: round(statistics.median(c[k] for c in found), 3) for k in found[0] if k != "capacity_start"}
            summary[key]["capacity_start"] = found[0]["capacity_start"]
    result = {"benchmark": "startup", "command": common.command_line(), "machine": common.machine_info(), "load": load.summary(),
              "quick": args.quick, "reps": reps, "trial": TRIAL, "variants": {**variants, **kept}, "help_runs": helps, "runs": runs,
              "checks": checks, "kept_checks": kept_checks, "summary": summary}
    common.write_result("startup", result, markdown(result), args.out)
    return result


def markdown(result: dict[str, Any]) -> str:
    s = result["summary"]
    rows = [[name, s[name]["to_worker_start_s"], s[name]["to_first_epoch_s"], s[name]["worker_start_to_first_epoch_s"],
             s[name]["first_epoch_s"], s[name]["total_s"], s[name].get("floor_ratio", "-"), " ".join(extra) or "-"]
            for name, extra in result["variants"].items()]
    check = ""
    if "check" in s:
        c = s["check"]
        check = (f"\n`pai-sweep check` (default small CNN, 1,418 parameters; medians of {result['reps']}): {c['check_s']} s in all, "
                 f"its imports alone {c['imports_s']} s, so {c['after_imports_s']} s after imports (target <= 3 s); the capacity "
                 f"test {c['capacity_test_s']} s ({c['capacity_start']} start).\n")
    if "check_kept" in s:
        c = s["check_kept"]
        check += (f"\nThe same check while a kept warm server runs (`launcher.keep_warm=120`, left by kept_first/kept_next): "
                  f"{c['check_s']} s in all (the capacity test {c['capacity_test_s']} s).\n")
    return (
        common.header_md("Start-up", result)
        + f"\n`pai-sweep --help`: {s['help_s']} s (median of {result['reps']}).\n\n"
        f"One-trial sweep `{' '.join(result['trial'])}` (medians of {result['reps']}; seconds from the command's start):\n\n"
        + common.md_table(["variant", "worker starts", "first epoch done", "worker start -> first epoch", "epoch 0 itself",
                           "whole sweep", "floor ratio", "overrides"], rows)
        + "\n" + check
    )


if __name__ == "__main__":
    main()
