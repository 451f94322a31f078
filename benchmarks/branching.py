"""Branching on and off: one sweep over post-switch knobs, the same trials, their cost and their results.

Two sweeps (--space): `post_switch`, the random sampler over max_dendrites, the initialisation multiplier
and max_dendrite_tries (only the state before the first switch can be shared: the multiplier differs in
every trial); `dendrite_budget`, the grid over max_dendrites 1-5 and max_dendrite_tries 1-2 (how many
dendrites pay: later points can be shared too).

Three sides of the same sweep (every side runs the same params in the same order):
- branching: `sweep.branching=auto` (the default): trials after the first start from its state before
  the first switch;
- off: `sweep.branching=off`, every trial from epoch 0;
- off, resume points: `sweep.branching=off launcher.resume_requeued=true`: what a resume point every epoch
  costs (what lets a killed worker continue instead of starting again).

Reported: summed trial CPU seconds (each worker's own, load-independent), summed epochs each trial trained
itself, wall seconds, and whether every trial's objective values are identical between the sides.
"""

from __future__ import annotations

import json
import re
import sqlite3
import tempfile
from pathlib import Path
from typing import Any

from benchmarks import common

SPACES = {
    "post_switch": ["sweep.sampler=random",
                    "sweep.space={dendrites.max_dendrites:{type:int,low:1,high:3},"
                    "dendrites.candidate_weight_initialization_multiplier:{type:float,low:0.001,high:0.1,log:true},"
                    "dendrites.max_dendrite_tries:{type:int,low:1,high:3}}"],
    "dendrite_budget": ["sweep.sampler=grid",
                        "sweep.space={dendrites.max_dendrites:{type:int,low:1,high:5},"
                        "dendrites.max_dendrite_tries:{type:int,low:1,high:2}}"],
}
SIDES = {
    "branching": ["sweep.branching=auto", "launcher.resume_requeued=false"],
    "off": ["sweep.branching=off", "launcher.resume_requeued=false"],
    "off_resume_points": ["sweep.branching=off", "launcher.resume_requeued=true"],
}


def overrides(n: int, quick: bool, space: str = "post_switch") -> list[str]:
    # --quick runs one trial at a time, so its later trials always find the first one's branch point
    out = ["sweep=empty", *SPACES[space], f"sweep.n_trials={n}", f"sweep.in_flight={1 if quick else 2}", "tracking=off", "sweep.check_first=false",
           "sweep.derived_trials=false", "sweep.rule_trials=false"]
    if quick:
        out += ["model=mlp", "model.hidden=[16]", "dendrites=linear_only", "dendrites.n_epochs_to_switch=2", "train.max_epochs=14"]
    return out


def read_trials(sweep_dir: Path) -> list[dict[str, Any]]:
    """Each trial: number, objective values, CPU seconds, epochs it trained itself, where it started."""
    con = sqlite3.connect(sweep_dir / "study.db")
    values: dict[int, list[float]] = {}
    for number, value in con.execute(
        "SELECT t.number, v.value FROM trials t JOIN trial_values v ON v.trial_id = t.trial_id ORDER BY t.number, v.objective"
    ):
        values.setdefault(int(number), []).append(value)
    con.close()
    rows = []
    for folder in sorted((sweep_dir / "trials").iterdir(), key=lambda p: int(p.name)):
        result = json.loads((folder / "result.json").read_text())
        started = (result.get("extra") or {}).get("started_from") or {}
        own = int(result.get("epochs") or 0) - int(started.get("epoch") or 0)
        rows.append({"number": int(folder.name), "values": values.get(int(folder.name)), "status": result["status"],
                     "cpu_seconds": float(result["extra"].get("cpu_seconds", 0.0)), "seconds": float(result.get("seconds") or 0.0),
                     "epochs": int(result.get("epochs") or 0),
                     "own_epochs": own, "branched_from": started.get("parent") if started.get("kind") == "branch" else None,
                     "branched_with_dendrites": started.get("dendrites") if started.get("kind") == "branch" else None})
    return rows


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = common.base_parser(__doc__.splitlines()[0])
    p.add_argument("--trials", type=int, default=None, help="trials per sweep (default 10; --quick 3)")
    p.add_argument("--space", choices=sorted(SPACES), default="post_switch", help="which sweep (see above)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="one more override for every side (e.g. train.max_epochs=150); the result file's name says so")
    args = p.parse_args(argv)
    n = args.trials or (3 if args.quick else 10)
    work = args.work or Path(tempfile.mkdtemp(prefix="bench_branching_"))
    base = overrides(n, args.quick, args.space) + list(args.set)
    sides: dict[str, Any] = {}
    with common.LoadSampler() as load:
        for side, extra in SIDES.items():
            sweep_dir = work / side
            cmd = [*common.pai_sweep_cmd(), *base, *extra, f"sweep.name={side}", f"sweep.dir={sweep_dir}"]
            run = common.run_timed(cmd, cwd=work, log=work / f"{side}.log")
            common.check_ok(run, f"sweep {side}")
            trials = read_trials(sweep_dir)
            sides[side] = {"wall_seconds": run["seconds"], "command_cpu_seconds": run["cpu_seconds"], "trials": trials,
                           "trial_cpu_seconds": round(sum(t["cpu_seconds"] for t in trials), 2),
                           "trial_seconds": round(sum(t["seconds"] for t in trials), 2),
                           "own_epochs": sum(t["own_epochs"] for t in trials), "epochs": sum(t["epochs"] for t in trials),
                           "branched": sum(1 for t in trials if t["branched_from"] is not None),
                           "branched_after_a_switch": sum(1 for t in trials if (t["branched_with_dendrites"] or 0) >= 1)}
            print(f"{side}: {run['seconds']:.0f} s wall, {sides[side]['trial_cpu_seconds']:.0f} trial CPU s, "
                  f"{sides[side]['own_epochs']} of {sides[side]['epochs']} epochs trained, {sides[side]['branched']} branched", flush=True)
    on, off, points = sides["branching"], sides["off"], sides["off_resume_points"]
    same = [t["values"] for t in on["trials"]] == [t["values"] for t in off["trials"]] == [t["values"] for t in points["trials"]]
    result = {
        "benchmark": "_".join(["branching", *([args.space] if args.space != "post_switch" else []),
                               *(re.sub(r"[^A-Za-z0-9]+", "_", o).strip("_") for o in args.set)]), "command": common.command_line(), "machine": common.machine_info(), "load": load.summary(),
        "quick": args.quick, "n_trials": n, "space": args.space, "overrides": base, "extra_overrides": list(args.set), "sides": sides,
        "headline": {
            "identical_results": same,
            "trial_cpu_saved_share": round(1 - on["trial_cpu_seconds"] / off["trial_cpu_seconds"], 3),
            "trial_seconds_saved_share": round(1 - on["trial_seconds"] / off["trial_seconds"], 3),
            "epochs_saved_share": round(1 - on["own_epochs"] / off["own_epochs"], 3),
            "wall_ratio_on_vs_off": common.ratio(on["wall_seconds"], off["wall_seconds"]),
            "resume_points_cpu_ratio": common.ratio(points["trial_cpu_seconds"], off["trial_cpu_seconds"]),
        },
    }
    common.write_result(result["benchmark"], result, markdown(result), args.out)
    return result


def markdown(result: dict[str, Any]) -> str:
    h, s = result["headline"], result["sides"]
    rows = [(side, d["trial_cpu_seconds"], d["trial_seconds"], f"{d['own_epochs']} / {d['epochs']}", d["branched"],
             d.get("branched_after_a_switch", 0), d["wall_seconds"]) for side, d in s.items()]
    space = result.get("space", "post_switch")
    return (
        common.header_md(f"Branching: one sweep over post-switch knobs ({space}), on and off", result)
        + f"\n{result['n_trials']} trials, {' '.join(SPACES[space] + result.get('extra_overrides', []))} (the same params on every side), "
        f"{2 if not result['quick'] else 1} in flight.\n\n"
        + common.md_table(["side", "trial CPU s (summed)", "trial wall s (summed)", "epochs trained / in the records",
                           "branched trials", "of them from a state with dendrites", "wall s"], rows)
        + f"\n\n- identical objective values on every side: **{h['identical_results']}**\n"
        f"- branching saved {h['trial_cpu_saved_share']:.1%} of the trials' CPU seconds "
        f"({h['trial_seconds_saved_share']:.1%} of their wall seconds, which move with the machine's load) and "
        f"{h['epochs_saved_share']:.1%} of the epochs; wall on/off {h['wall_ratio_on_vs_off']}\n"
        f"- per-epoch resume points: trial CPU with / without = {h['resume_points_cpu_ratio']}\n"
    )


if __name__ == "__main__":
    main()
