"""Search quality: random vs plain TPE vs pai-sweep guided (rule + derived trials), per task, over seeds.

Tasks (benchmarks/conf/sweep/bench_quality*.yaml), objective=efficiency with a baseline (the
original, widest model without dendrites runs first; the score must stay within the tolerance
of it while parameters go down):
- mnist1d: MNIST-1D (generated locally), the conv1d family at widths 0.25-1.0 x dendrite knobs;
  small 1-D CNNs there gain from dendrites, so the feedback has something to find.
- digits: scikit-learn digits, the small CNN at widths x dendrite knobs.
Each method runs once per sampler seed, interleaved (seed 0: random, tpe, guided; seed 1: ...).

Measures, against trials used (sampler + rule trials in the order they finished; a derived point counts
at its parent's position) and against compute (summed trial seconds in that order; derived points are
free). The baseline's own point counts for every method from the start (trial 0, compute 0): every
method runs it, it is what the user already has, and a trial that only runs the original model again
adds nothing (before 2026-12-01 it was left out, which credited such trials; the summary keeps that
share as `compute_share_baseline_left_out`):
- hypervolume of (score, parameters): maximise the score, minimise parameters, reference point
  (SCORE_REF % accuracy, PARAMS_REF_X x the original model's parameters), normalised to [0, 1];
- the same hypervolume at the test scores of the same points (each chosen on validation), beside it: a
  validation maximum that was luck does not carry over;
- the fewest parameters among feasible trials (score >= baseline - tolerance), and the best
  score among trials smaller than the baseline model.
The headline (mnist1d): the share of plain TPE's total compute that guided needed to reach TPE's
final hypervolume (per seed, then the mean; 1.0 or more when it never did), and whether guided's
mean hypervolume is at or above TPE's at every compute level.

    python -m benchmarks.search_quality                    # both tasks, 5 seeds x 12 trials
    python -m benchmarks.search_quality --tasks mnist1d    # one task
    python -m benchmarks.search_quality --quick            # 1 seed x 1 trial per task: checks the pipeline
    python -m benchmarks.search_quality --first-seed 5     # 5 more seeds (5-9): a replication
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import common

SCORE_REF = 50.0  # accuracy (%) at the reference point: anything worse adds no volume
PARAMS_REF_X = 2.0  # parameters at the reference point, as a multiple of the original model's
TARGET_COMPUTE_SHARE = 0.5  # guided should reach plain TPE's final hypervolume within half of TPE's compute
COMPUTE_GRID = 24  # compute levels at which the mean curves are compared

METHODS = {
    "random": ["sweep.sampler=random", "sweep.rule_trials=false", "sweep.derived_trials=false"],
    "tpe": ["sweep.sampler=tpe", "sweep.rule_trials=false", "sweep.derived_trials=false"],
    "guided": ["sweep.sampler=tpe", "sweep.rule_trials=true", "sweep.derived_trials=true"],
}

# task -> (overrides, quick overrides)
TASKS = {
    "mnist1d": (
        ["sweep=bench_quality_mnist1d", "model=conv1d", "data=mnist1d", "dendrites=conv1d", "downsize=width",
         "data.limit=1600", "train.max_epochs=32", "train.batch_size=64", "train.optimizer.args.lr=0.03"],
        ["data.limit=200", "train.max_epochs=2"],
    ),
    "digits": (
        ["sweep=bench_quality", "model=small_cnn", "downsize=width", "data.limit=600", "train.max_epochs=25",
         "train.optimizer.args.lr=0.03"],  # high enough that the base models plateau well before the epoch cap
        ["data.limit=150", "train.max_epochs=2"],
    ),
}


def task_overrides(task: str, quick: bool) -> list[str]:
    full, short = TASKS[task]
    return [common.searchpath_override(), *full, *(short if quick else []), "objective=efficiency",
            "objective.baseline=true", "tracking=off"]


def hypervolume(points: list[tuple[float, float]], params_ref: float) -> float:
    """Normalised area dominated by (score up, params down) points inside the reference box."""
    pts = sorted((p, s) for s, p in points if s > SCORE_REF and p < params_ref)
    area, best = 0.0, SCORE_REF
    for i, (p, s) in enumerate(pts):
        best = max(best, s)
        upper = pts[i + 1][0] if i + 1 < len(pts) else params_ref
        area += (upper - p) * (best - SCORE_REF)
    return area / ((100.0 - SCORE_REF) * params_ref)


def _seconds(t, key: str = "cpu_seconds") -> float:
    """A trial's compute: the worker's CPU seconds (what it cost, whatever else ran on the machine), else its wall
    seconds, else its span in the study."""
    for name in (key, "seconds"):
        sec = t.user_attrs.get(name)
        if isinstance(sec, (int, float)) and sec > 0:
            return float(sec)
    if t.datetime_start and t.datetime_complete:
        return (t.datetime_complete - t.datetime_start).total_seconds()
    return 0.0


def _test_score(t) -> float | None:
    """The test score of the architecture the trial's value is about (chosen on validation), where recorded."""
    from pai_sweep.trial_files import finite

    return next((v for v in (finite(t.user_attrs.get(k)) for k in ("chosen_test", "best_test")) if v is not None), None)


def read_sweep(sweep_dir: Path, name: str) -> dict[str, Any]:
    """The sweep's trials in the order they were used, with derived points at their parent's position and compute."""
    import optuna
    from optuna.trial import TrialState

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name=name, storage=f"sqlite:///{sweep_dir / 'study.db'}")
    trials = study.get_trials(deepcopy=False)
    baseline = next((t for t in trials if t.user_attrs.get("origin") == "baseline" and t.state == TrialState.COMPLETE), None)
    used = sorted((t for t in trials if t.user_attrs.get("origin") not in ("baseline", "derived") and t.state != TrialState.WAITING),
                  key=lambda t: (t.datetime_complete is None, t.datetime_complete or 0, t.number))
    position = {t.number: i + 1 for i, t in enumerate(used)}
    compute, total, wall = {}, 0.0, 0.0
    for t in used:
        total += _seconds(t)
        wall += _seconds(t, "seconds")
        compute[t.number] = round(total, 2)
    points = []  # (position, compute, origin, score, params)
    for t in trials:
        o = t.user_attrs.get("origin", "sampler")
        if t.state != TrialState.COMPLETE or o == "baseline" or not t.values:
            continue
        ref = t.number if o != "derived" else t.user_attrs.get("parent")
        if ref not in position:
            continue
        points.append({"at": position[ref], "compute": compute[ref], "origin": o,
                       "score": float(t.values[0]), "params": float(t.values[1]), "test": _test_score(t)})
    if baseline is not None:  # what every method starts from (see the module docstring)
        points.insert(0, {"at": 0, "compute": 0.0, "origin": "baseline", "score": float(baseline.values[0]),
                          "params": float(baseline.values[1]), "test": _test_score(baseline)})
    original = None
    for t in trials:  # the original model's size, from any trial's result (the baseline's own run)
        if t.user_attrs.get("trial_dir"):
            from pai_sweep.trial_files import read_result

            r = read_result(Path(t.user_attrs["trial_dir"]))
            if r is not None and r.original_params:
                original = r.original_params
                break
    lower_bounds = sum(len(t.user_attrs.get("lower_bounds") or []) for t in used)
    return {
        "n_used": len(used),
        "failed": sum(1 for t in used if t.state == TrialState.FAIL),
        "origins": {o: sum(1 for t in used if t.user_attrs.get("origin", "").split(":")[0] == o) for o in ("sampler", "rule")},
        "rules": sorted(t.user_attrs.get("origin", "")[len("rule:"):] for t in used if t.user_attrs.get("origin", "").startswith("rule:")),
        "derived": sum(1 for p in points if p["origin"] == "derived"),
        "lower_bounds": lower_bounds,
        "compute_seconds": round(total, 2),  # CPU seconds of the trials that ran (derived points free)
        "wall_trial_seconds": round(wall, 2),
        "first_trial_compute": min(compute.values()) if compute else 0.0,
        "baseline_score": float(baseline.user_attrs["score"]) if baseline else None,
        "baseline_params": (baseline.user_attrs.get("chosen_params") or baseline.user_attrs.get("n_params")) if baseline else None,
        "original_params": original,
        "points": points,
    }


def _params_ref(sweep: dict[str, Any]) -> float:
    return PARAMS_REF_X * float(sweep["original_params"] or 1)


def hv_at_compute(sweep: dict[str, Any], budget: float) -> float:
    """Hypervolume of the points whose trials (or parents) had finished within `budget` summed trial seconds."""
    return hypervolume([(p["score"], p["params"]) for p in sweep["points"] if p["compute"] <= budget + 1e-9], _params_ref(sweep))


def compute_to_reach(sweep: dict[str, Any], level: float) -> float | None:
    """The summed trial seconds after which the sweep's hypervolume first reached `level` (None: never)."""
    for c in sorted({p["compute"] for p in sweep["points"]}):
        if hv_at_compute(sweep, c) >= level - 1e-12:
            return c
    return None


def curves(sweep: dict[str, Any], n: int, tolerance: float) -> dict[str, list]:
    params_ref = _params_ref(sweep)
    base_s, base_p = sweep["baseline_score"], sweep["baseline_params"]
    hv, hv_real, hv_test, smallest, best_small = [], [], [], [], []
    for k in range(1, n + 1):
        seen = [p for p in sweep["points"] if p["at"] <= k]
        hv.append(round(hypervolume([(p["score"], p["params"]) for p in seen], params_ref), 5))
        # the same points (selected on validation) at their test scores: a validation maximum that was luck shows here
        hv_test.append(round(hypervolume([(p["test"], p["params"]) for p in seen if p.get("test") is not None], params_ref), 5))
        hv_real.append(round(hypervolume([(p["score"], p["params"]) for p in seen if p["origin"] != "derived"], params_ref), 5))
        feas = [p["params"] for p in seen if base_s is not None and p["score"] >= base_s - tolerance]
        smallest.append(min(feas) if feas else None)
        small = [p["score"] for p in seen if base_p is not None and p["params"] < base_p]
        best_small.append(round(max(small), 3) if small else None)
    return {"hypervolume": hv, "hypervolume_ran_only": hv_real, "hypervolume_test": hv_test, "smallest_feasible_params": smallest,
            "best_score_smaller_than_baseline": best_small}


def first_reaching(curve: list[float], level: float) -> int | None:
    return next((i + 1 for i, v in enumerate(curve) if v >= level - 1e-12), None)


def mean_curve(rows: list[list[float | None]]) -> list[float | None]:
    out = []
    for vals in zip(*rows):
        got = [v for v in vals if v is not None]
        out.append(round(sum(got) / len(got), 5) if got else None)
    return out


def run_task(task: str, seeds: list[int], n: int, tolerance: float, quick: bool, work: Path,
             methods: list[str] | None = None, extra_overrides: list[str] | None = None,
             reused: dict[str, list[dict[str, Any]]] | None = None) -> dict[str, Any]:
    """Run `methods` (default all) per seed; the others' runs come from `reused` (an earlier result's, same seeds)."""
    base = task_overrides(task, quick) + [f"sweep.n_trials={n}", f"objective.tolerance={tolerance}"]
    runs: dict[str, list[dict[str, Any]]] = {m: [] for m in METHODS}
    for method, earlier in (reused or {}).items():
        runs[method] = [r for r in earlier if r["seed"] in seeds]
    for seed in seeds:
        for method, extra in METHODS.items():
            if methods is not None and method not in methods:
                continue
            extra = [*extra, *(extra_overrides or [])]
            name = f"{task}_{method}_s{seed}"
            sweep_dir = work / name
            cmd = [*common.pai_sweep_cmd(), *base, *extra, f"sweep.seed={seed}", f"sweep.name={name}", f"sweep.dir={sweep_dir}"]
            run = common.run_timed(cmd, cwd=work, log=work / f"{name}.log")
            common.check_ok(run, f"sweep {name}")
            sweep = read_sweep(sweep_dir, name)
            sweep.update(seed=seed, seconds=run["seconds"], curves=curves(sweep, n, tolerance))
            runs[method].append(sweep)
            print(f"{name}: {run['seconds']:.0f} s wall, {sweep['compute_seconds']:.0f} trial-s, "
                  f"final hypervolume {sweep['curves']['hypervolume'][-1]:.4f}", flush=True)
    return {"overrides": base, "summary": summarise(runs, n), "runs": runs}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = common.base_parser(__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=None, help="sampler seeds per method (default 5; --quick 1)")
    p.add_argument("--first-seed", type=int, default=0, help="the first sampler seed (a replication on new seeds)")
    p.add_argument("--trials", type=int, default=None, help="trial budget per sweep (default 12; --quick 1)")
    p.add_argument("--tasks", default=",".join(TASKS), help=f"comma-separated, of {', '.join(TASKS)}")
    p.add_argument("--methods", default=None, help=f"run only these (comma-separated, of {', '.join(METHODS)}); the others' "
                   "runs come from --reuse-from")
    p.add_argument("--reuse-from", type=Path, default=None, help="an earlier search_quality.json whose runs of the methods "
                   "not run here are compared with these (paired by seed)")
    p.add_argument("--override", action="append", default=[], help="an override added to the methods run here (repeatable)")
    p.add_argument("--summarise", type=Path, default=None, help="recompute an earlier search_quality.json's summaries "
                   "and headline with this code (no sweeps run); with --work (that run's folder) its sweeps are read again")
    args = p.parse_args(argv)
    if args.summarise is not None:
        return resummarise(args.summarise, args.out, args.work)
    methods = [m.strip() for m in args.methods.split(",")] if args.methods else None
    earlier = json.loads(args.reuse_from.read_text()) if args.reuse_from else None
    if methods and earlier is None and set(methods) != set(METHODS):
        p.error("--methods without --reuse-from: the comparison needs every method's runs")
    seeds = list(range(args.first_seed, args.first_seed + (args.seeds or (1 if args.quick else 5))))
    n = args.trials or (1 if args.quick else 12)
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    unknown = [t for t in tasks if t not in TASKS]
    if unknown:
        p.error(f"unknown task(s) {', '.join(unknown)}; choose from {', '.join(TASKS)}")
    tolerance = 1.0
    work = args.work or Path(tempfile.mkdtemp(prefix="bench_quality_"))
    with common.LoadSampler() as load:
        results = {task: run_task(task, seeds, n, tolerance, args.quick, work, methods, args.override,
                                   {m: r for m, r in earlier["tasks"][task]["runs"].items() if m not in (methods or METHODS)}
                                   if earlier else None)
                   for task in tasks}
    result = {
        "benchmark": "search_quality", "command": common.command_line(), "machine": common.machine_info(),
        "load": load.summary(), "quick": args.quick, "methods": METHODS, "seeds": seeds,
        "run_here": methods or list(METHODS), "overrides_here": args.override,
        "reused_from": {"file": str(args.reuse_from), "commit": earlier["machine"]["commit"]} if earlier else None,
        "n_trials": n, "tolerance": tolerance, "reference_point": {"score": SCORE_REF, "params_x_original": PARAMS_REF_X},
        "target": (f"on mnist1d guided reaches plain TPE's final hypervolume within {TARGET_COMPUTE_SHARE:.0%} of TPE's compute; "
                   "on digits guided is never below TPE at equal compute"),
        "tasks": results,
    }
    result["headline"] = headline(result)
    common.write_result("search_quality", result, markdown(result), args.out)
    return result


def headline(result: dict[str, Any]) -> dict[str, Any]:
    task = "mnist1d" if "mnist1d" in result["tasks"] else next(iter(result["tasks"]))
    hs = result["tasks"][task]["summary"]
    return {"task": task, "seeds": len(result["seeds"]),
            "compute_share_to_reach_tpe_final": hs["compute_share_to_reach_tpe_final"],
            "beats_tpe_at_equal_compute": hs["beats_tpe_at_equal_compute"]}


def resummarise(path: Path, out: Path | None, work: Path | None = None) -> dict[str, Any]:
    """An earlier result with its summaries and headline computed again from its stored runs; with `work` (its
    --work folder, still there) each run's points are read again from its sweep's study (what this code reads)."""
    result = json.loads(path.read_text())
    for task, data in result["tasks"].items():
        for method, rs in data["runs"].items():
            if work is not None:
                for r in rs:
                    name = f"{task}_{method}_s{r['seed']}"
                    r["points"] = read_sweep(work / name, name)["points"]
                    r["curves"] = curves(r, result["n_trials"], result["tolerance"])
            elif any(all(p["origin"] != "baseline" for p in r["points"]) for r in rs):
                # stored before the baseline's point was recorded: summarised as it is, it would be the old measure
                sys.exit(f"{path}: its {task} {method} runs have no baseline point (an older result); pass --work with "
                         f"its sweep folders to read them again")
        data["summary"] = summarise(data["runs"], result["n_trials"])
    result["headline"] = headline(result)
    result["resummarised"] = {"from": str(path), "by_commit": common.machine_info().get("commit")}
    common.write_result("search_quality", result, markdown(result), out)
    return result


def paired(diffs: list[float]) -> dict[str, Any]:
    """Mean of per-seed differences with its standard error; 'beyond noise' at 2 standard errors."""
    k = len(diffs)
    mean = sum(diffs) / k if k else 0.0
    sd = (sum((d - mean) ** 2 for d in diffs) / (k - 1)) ** 0.5 if k > 1 else float("nan")
    se = sd / k**0.5 if k > 1 else float("nan")
    return {"mean": round(mean, 5), "se": round(se, 5) if se == se else None, "seeds": k,
            "beyond_noise": bool(k > 1 and se == se and abs(mean) >= 2 * se and mean != 0)}


def guided_vs_tpe(runs: dict[str, list[dict[str, Any]]], n: int, grid: list[float]) -> dict[str, Any]:
    """Guided minus plain TPE, paired by seed: hypervolume after k trials and at equal compute, and the test-score
    hypervolume of the same points after all n trials."""
    pairs = list(zip(runs["guided"], runs["tpe"]))
    test_final = (paired([g["curves"]["hypervolume_test"][-1] - t["curves"]["hypervolume_test"][-1] for g, t in pairs])
                  if all("hypervolume_test" in r["curves"] for r in runs["guided"] + runs["tpe"]) else None)
    at_trials = {k: paired([g["curves"]["hypervolume"][k - 1] - t["curves"]["hypervolume"][k - 1] for g, t in pairs])
                 for k in sorted({max(1, round(n * f)) for f in (0.25, 0.5, 0.75, 1.0)})}
    at_compute = {c: paired([hv_at_compute(g, c) - hv_at_compute(t, c) for g, t in pairs])
                  for c in (grid[len(grid) // 4], grid[len(grid) // 2], grid[-1])} if grid else {}
    return {"after_trials": at_trials, "at_compute_seconds": at_compute, "test_after_all_trials": test_final}


def compute_share(guided: dict[str, Any], tpe: dict[str, Any]) -> tuple[float, float | None]:
    """The share of TPE's compute guided needed to reach TPE's final hypervolume (1.0 or more: never), and the
    compute it took."""
    c = compute_to_reach(guided, hv_at_compute(tpe, float("inf")))
    tpe_total = tpe["compute_seconds"] or 1.0
    return (c / tpe_total if c is not None else max(1.0, guided["compute_seconds"] / tpe_total)), c


def baseline_left_out(sweep: dict[str, Any]) -> dict[str, Any]:
    return {**sweep, "points": [p for p in sweep["points"] if p["origin"] != "baseline"]}


def summarise(runs: dict[str, list[dict[str, Any]]], n: int) -> dict[str, Any]:
    mean = {m: {k: mean_curve([r["curves"][k] for r in rs]) for k in rs[0]["curves"] if all(k in r["curves"] for r in rs)}
            for m, rs in runs.items() if rs}
    tpe_final = mean["tpe"]["hypervolume"][-1]
    per_seed = []
    for g, t in zip(runs["guided"], runs["tpe"]):
        final = hv_at_compute(t, float("inf"))  # unrounded, as compute_share and the baseline's point are
        level = round(final, 5)  # as the curves hold it
        k = first_reaching(g["curves"]["hypervolume"], level)
        share, c = compute_share(g, t)
        per_seed.append({"seed": g["seed"], "tpe_final": level, "guided_final": g["curves"]["hypervolume"][-1],
                         "trials_to_tpe_final": k, "compute_to_tpe_final": c, "tpe_compute": t["compute_seconds"],
                         "guided_compute": g["compute_seconds"], "compute_share": round(share, 3),
                         "compute_share_baseline_left_out": round(compute_share(baseline_left_out(g), baseline_left_out(t))[0], 3),
                         "tpe_improved": final > hv_at_compute(t, 0.0) + 1e-12})
    # mean hypervolume against compute, on a grid from the point where every method has finished a trial (on
    # average; before it, which trial happens to end first decides everything) to the largest mean total compute,
    # each sweep's curve flat after its last trial (a grid that stopped at the smallest total hid a method's last
    # trials)
    totals = {m: sum(r["compute_seconds"] for r in rs) / len(rs) for m, rs in runs.items()}
    start = max(sum(r["first_trial_compute"] for r in rs) / len(rs) for rs in runs.values())
    top = max(totals.values())
    grid = [round(start + (top - start) * i / (COMPUTE_GRID - 1), 2) for i in range(COMPUTE_GRID)]
    vs_compute = {m: [round(sum(hv_at_compute(r, c) for r in rs) / len(rs), 5) for c in grid] for m, rs in runs.items()}
    gaps = [g - t for g, t in zip(vs_compute["guided"], vs_compute["tpe"])]
    # a seed where TPE's sweep never beat the baseline's own point has nothing to reach (guided would "reach" it at
    # compute 0): it is left out of the mean share, and counted
    counted = [p for p in per_seed if p["tpe_improved"]]
    share = round(sum(p["compute_share"] for p in counted) / len(counted), 3) if counted else None
    return {
        "mean_curves": mean,
        "compute_grid": grid,
        "hypervolume_vs_compute": vs_compute,
        "tpe_final_hypervolume": tpe_final,
        "guided_trials_to_tpe_final": first_reaching(mean["guided"]["hypervolume"], tpe_final) if tpe_final is not None else None,
        "compute_share_to_reach_tpe_final": share,
        "seeds_where_tpe_beat_the_baseline": len(counted),
        "compute_share_baseline_left_out": round(sum(p["compute_share_baseline_left_out"] for p in per_seed) / len(per_seed), 3) if per_seed else None,
        "beats_tpe_at_equal_compute": bool(gaps and min(gaps) >= -1e-9 and gaps[-1] > 0),
        "guided_minus_tpe_at_compute": {"min": round(min(gaps), 5), "max": round(max(gaps), 5), "final": round(gaps[-1], 5)} if gaps else None,
        "per_seed": per_seed,
        "guided_minus_tpe_paired": guided_vs_tpe(runs, n, grid),
        "target_met": bool(share is not None and share <= TARGET_COMPUTE_SHARE),
        "seconds": {m: round(sum(r["seconds"] for r in rs), 1) for m, rs in runs.items()},
        "compute_seconds": {m: round(totals[m], 1) for m in runs},
        "wall_trial_seconds": {m: round(sum(r["wall_trial_seconds"] for r in rs) / len(rs), 1) for m, rs in runs.items()},
        "extra_points": {m: sum(r["derived"] for r in rs) for m, rs in runs.items()},
        "lower_bounds": {m: sum(r["lower_bounds"] for r in rs) for m, rs in runs.items()},
        "rule_trials": {m: sum(r["origins"]["rule"] for r in rs) for m, rs in runs.items()},
        "failed": {m: sum(r["failed"] for r in rs) for m, rs in runs.items()},
    }


def task_markdown(task: str, data: dict[str, Any], n: int) -> str:
    s = data["summary"]
    mc = s["mean_curves"]
    picks = sorted({max(1, round(n * f)) for f in (0.25, 0.5, 0.75, 1.0)})
    rows = []
    for m in mc:
        c = mc[m]
        rows.append([m, *[c["hypervolume"][k - 1] for k in picks], c["hypervolume_ran_only"][-1],
                     s["hypervolume_vs_compute"][m][len(s["compute_grid"]) // 2 - 1], s["hypervolume_vs_compute"][m][-1],
                     c["smallest_feasible_params"][-1], c["best_score_smaller_than_baseline"][-1],
                     s["rule_trials"][m], s["extra_points"][m], s["lower_bounds"][m], s["compute_seconds"][m],
                     s["wall_trial_seconds"][m]])
    head = ["method", *[f"HV @{k} trials" for k in picks], "HV ran-only @end", f"HV @{s['compute_grid'][len(s['compute_grid']) // 2 - 1]:.0f} s",
            f"HV @{s['compute_grid'][-1]:.0f} s", "fewest params feasible", "best score < baseline size",
            "rule trials", "derived points", "lower bounds", "CPU s per sweep", "wall trial-s per sweep"]
    per_seed = ", ".join(f"seed {r['seed']}: {r['compute_share']}" for r in s["per_seed"])
    gp = s["guided_minus_tpe_paired"]

    def said(d: dict[str, Any]) -> str:
        se = f" +/- {d['se']:.3f}" if d["se"] is not None else ""
        return f"{d['mean']:+.3f}{se}{' (beyond the noise)' if d['beyond_noise'] else ' (inside the noise)'}"

    diffs = "; ".join([*(f"after {k} trials {said(d)}" for k, d in gp["after_trials"].items()),
                       *(f"at {float(c):.0f} CPU s {said(d)}" for c, d in gp["at_compute_seconds"].items())])
    test = ""
    if gp.get("test_after_all_trials") and all("hypervolume_test" in mc[m] for m in mc):
        finals = ", ".join(f"{m} {mc[m]['hypervolume_test'][-1]}" for m in mc)
        test = (f"\nThe same points at their test scores (each chosen on validation; the selection's luck does not carry "
                f"over): final hypervolume {finals}; guided minus TPE after {n} trials {said(gp['test_after_all_trials'])}.\n")
    return (
        f"\n## {task}\n\n" + common.md_table(head, rows)
        + f"\n\nPlain TPE's final mean hypervolume {s['tpe_final_hypervolume']}; guided needs a share "
        f"{s['compute_share_to_reach_tpe_final']} of TPE's compute to reach each seed's TPE final ({per_seed}; the mean "
        f"over the {s.get('seeds_where_tpe_beat_the_baseline', len(s['per_seed']))} of {len(s['per_seed'])} seeds where TPE "
        "beat the baseline's own point); "
        f"with the baseline's point left out of every hypervolume (the measure before 2026-12-01) "
        f"{s['compute_share_baseline_left_out']}. "
        f"Guided minus TPE mean hypervolume at equal compute: {s['guided_minus_tpe_at_compute']}; "
        f"never below TPE: {s['beats_tpe_at_equal_compute']}.\n\n"
        f"Guided minus TPE hypervolume, paired by seed (mean +/- standard error over seeds): {diffs}.\n"
        + test
    )


def markdown(result: dict[str, Any]) -> str:
    n, h = result["n_trials"], result["headline"]
    ref = result["reference_point"]
    verdict = "met" if h["compute_share_to_reach_tpe_final"] is not None and h["compute_share_to_reach_tpe_final"] <= TARGET_COMPUTE_SHARE else "NOT met"
    return (
        common.header_md("Search quality: random vs TPE vs guided", result)
        + f"\n{len(result['seeds'])} seed(s) x {n} trials per method and task (means over seeds); reference point: "
        f"score {ref['score']} %, parameters {ref['params_x_original']} x the original model; HV normalised to [0, 1]; "
        "compute = summed trial CPU seconds (derived points free; the baseline's point counts for every method from "
        "compute 0, its compute left out; wall trial seconds beside them).\n\n"
        f"Headline ({h['task']}): compute share to reach TPE's final hypervolume {h['compute_share_to_reach_tpe_final']} "
        f"(target <= {TARGET_COMPUTE_SHARE}: **{verdict}**); guided never below TPE at equal compute: {h['beats_tpe_at_equal_compute']}.\n"
        + (f"\nSummaries recomputed from the stored runs of {result['resummarised']['from']} by commit "
           f"{result['resummarised']['by_commit']} (no sweeps run again).\n" if result.get("resummarised") else "")
        + (f"\nRun here: {', '.join(result['run_here'])} (with {' '.join(result['overrides_here']) or 'no extra overrides'}); "
           f"the other methods' runs from {result['reused_from']['file']} (commit {result['reused_from']['commit']}).\n"
           if result.get("reused_from") else "")
        + "".join(task_markdown(t, d, n) for t, d in result["tasks"].items())
    )


if __name__ == "__main__":
    main()
