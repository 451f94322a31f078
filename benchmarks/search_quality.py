"""Search quality: random vs plain TPE vs pai-sweep guided (rule + derived trials), equal trial budgets.

Task: digits (data.limit samples), the small CNN, objective=efficiency with a baseline (the
original model without dendrites runs first), searching downsize.width_mult x max_dendrites x
n_epochs_to_switch x the dendrite init scale (benchmarks/conf/sweep/bench_quality.yaml).
Each method runs once per sampler seed, interleaved (seed 0: random, tpe, guided; seed 1: ...).

Measures, against trials used (sampler + rule trials in the order they finished; the baseline
is left out, it is the same for all; a derived point counts at its parent's position):
- hypervolume of (score, parameters): maximise the objective's score, minimise parameters,
  reference point (SCORE_REF % accuracy, PARAMS_REF_X x the original model's parameters),
  normalised to [0, 1] by the reference box (100 - SCORE_REF) x PARAMS_REF_X * original;
- the fewest parameters among feasible trials (score >= baseline - tolerance), and the best
  score among trials smaller than the baseline model.

    python -m benchmarks.search_quality            # 3 seeds x 12 trials (~20-30 min on 2 busy cores)
    python -m benchmarks.search_quality --quick    # 1 seed x 1 trial: checks the pipeline
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import common

SCORE_REF = 50.0  # accuracy (%) at the reference point: anything worse adds no volume
PARAMS_REF_X = 2.0  # parameters at the reference point, as a multiple of the original model's
TARGET_SHARE = 0.60  # guided should reach plain TPE's final hypervolume within this share of the trials

METHODS = {
    "random": ["sweep.sampler=random", "sweep.rule_trials=false", "sweep.derived_trials=false"],
    "tpe": ["sweep.sampler=tpe", "sweep.rule_trials=false", "sweep.derived_trials=false"],
    "guided": ["sweep.sampler=tpe", "sweep.rule_trials=true", "sweep.derived_trials=true"],
}


def task_overrides(quick: bool) -> list[str]:
    epochs, limit = (2, 150) if quick else (25, 600)
    return [
        common.searchpath_override(), "sweep=bench_quality", "model=small_cnn", "downsize=width",
        "objective=efficiency", "objective.baseline=true", f"data.limit={limit}", f"train.max_epochs={epochs}",
        "train.optimizer.args.lr=0.03",  # high enough that the base models plateau well before the epoch cap
        "tracking=off",
    ]


def hypervolume(points: list[tuple[float, float]], params_ref: float) -> float:
    """Normalised area dominated by (score up, params down) points inside the reference box."""
    pts = sorted((p, s) for s, p in points if s > SCORE_REF and p < params_ref)
    area, best = 0.0, SCORE_REF
    for i, (p, s) in enumerate(pts):
        best = max(best, s)
        upper = pts[i + 1][0] if i + 1 < len(pts) else params_ref
        area += (upper - p) * (best - SCORE_REF)
    return area / ((100.0 - SCORE_REF) * params_ref)


def read_sweep(sweep_dir: Path, name: str) -> dict[str, Any]:
    """The sweep's trials in the order they were used, with derived points at their parent's position."""
    import optuna
    from optuna.trial import TrialState

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name=name, storage=f"sqlite:///{sweep_dir / 'study.db'}")
    trials = study.get_trials(deepcopy=False)
    baseline = next((t for t in trials if t.user_attrs.get("origin") == "baseline" and t.state == TrialState.COMPLETE), None)
    used = sorted((t for t in trials if t.user_attrs.get("origin") not in ("baseline", "derived") and t.state != TrialState.WAITING),
                  key=lambda t: (t.datetime_complete is None, t.datetime_complete or 0, t.number))
    position = {t.number: i + 1 for i, t in enumerate(used)}
    points = []  # (position, origin, score, params, feasible)
    for t in trials:
        o = t.user_attrs.get("origin", "sampler")
        if t.state != TrialState.COMPLETE or o == "baseline" or not t.values:
            continue
        pos = position.get(t.number) if o != "derived" else position.get(t.user_attrs.get("parent"))
        if pos is None:
            continue
        points.append({"at": pos, "origin": o, "score": float(t.values[0]), "params": float(t.values[1])})
    original = None
    for t in trials:  # the original model's size, from any trial's result (the baseline's own run)
        if t.user_attrs.get("trial_dir"):
            from pai_sweep.trial_files import read_result

            r = read_result(Path(t.user_attrs["trial_dir"]))
            if r is not None and r.original_params:
                original = r.original_params
                break
    return {
        "n_used": len(used),
        "failed": sum(1 for t in used if t.state == TrialState.FAIL),
        "origins": {o: sum(1 for t in used if t.user_attrs.get("origin", "").split(":")[0] == o) for o in ("sampler", "rule")},
        "derived": sum(1 for p in points if p["origin"] == "derived"),
        "baseline_score": float(baseline.user_attrs["score"]) if baseline else None,
        "baseline_params": (baseline.user_attrs.get("chosen_params") or baseline.user_attrs.get("n_params")) if baseline else None,
        "original_params": original,
        "points": points,
    }


def curves(sweep: dict[str, Any], n: int, tolerance: float) -> dict[str, list]:
    params_ref = PARAMS_REF_X * float(sweep["original_params"] or 1)
    base_s, base_p = sweep["baseline_score"], sweep["baseline_params"]
    hv, hv_real, smallest, best_small = [], [], [], []
    for k in range(1, n + 1):
        seen = [p for p in sweep["points"] if p["at"] <= k]
        hv.append(round(hypervolume([(p["score"], p["params"]) for p in seen], params_ref), 5))
        hv_real.append(round(hypervolume([(p["score"], p["params"]) for p in seen if p["origin"] != "derived"], params_ref), 5))
        feas = [p["params"] for p in seen if base_s is not None and p["score"] >= base_s - tolerance]
        smallest.append(min(feas) if feas else None)
        small = [p["score"] for p in seen if base_p is not None and p["params"] < base_p]
        best_small.append(round(max(small), 3) if small else None)
    return {"hypervolume": hv, "hypervolume_ran_only": hv_real, "smallest_feasible_params": smallest,
            "best_score_smaller_than_baseline": best_small}


def first_reaching(curve: list[float], level: float) -> int | None:
    return next((i + 1 for i, v in enumerate(curve) if v >= level - 1e-12), None)


def mean_curve(rows: list[list[float | None]]) -> list[float | None]:
    out = []
    for vals in zip(*rows):
        got = [v for v in vals if v is not None]
        out.append(round(sum(got) / len(got), 5) if got else None)
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = common.base_parser(__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=None, help="sampler seeds per method (default 3; --quick 1)")
    p.add_argument("--trials", type=int, default=None, help="trial budget per sweep (default 12; --quick 1)")
    args = p.parse_args(argv)
    seeds = list(range(args.seeds or (1 if args.quick else 3)))
    n = args.trials or (1 if args.quick else 12)
    tolerance = 1.0
    work = args.work or Path(tempfile.mkdtemp(prefix="bench_quality_"))
    base = task_overrides(args.quick) + [f"sweep.n_trials={n}", f"objective.tolerance={tolerance}"]
    runs: dict[str, list[dict[str, Any]]] = {m: [] for m in METHODS}
    with common.LoadSampler() as load:
        for seed in seeds:
            for method, extra in METHODS.items():
                name = f"{method}_s{seed}"
                sweep_dir = work / name
                cmd = [*common.pai_sweep_cmd(), *base, *extra, f"sweep.seed={seed}", f"sweep.name={name}", f"sweep.dir={sweep_dir}"]
                run = common.run_timed(cmd, cwd=work, log=work / f"{name}.log")
                common.check_ok(run, f"sweep {name}")
                sweep = read_sweep(sweep_dir, name)
                sweep.update(seed=seed, seconds=run["seconds"], curves=curves(sweep, n, tolerance))
                runs[method].append(sweep)
                print(f"{name}: {run['seconds']:.0f} s, final hypervolume {sweep['curves']['hypervolume'][-1]:.4f}", flush=True)
    summary = summarise(runs, n)
    result = {
        "benchmark": "search_quality", "command": common.command_line(), "machine": common.machine_info(),
        "load": load.summary(), "quick": args.quick, "overrides": base, "methods": METHODS, "seeds": seeds,
        "n_trials": n, "tolerance": tolerance, "reference_point": {"score": SCORE_REF, "params_x_original": PARAMS_REF_X},
        "target": f"guided reaches plain TPE's final hypervolume in <= {TARGET_SHARE:.0%} of the trials",
        "summary": summary, "runs": runs,
    }
    common.write_result("search_quality", result, markdown(result), args.out)
    return result


def summarise(runs: dict[str, list[dict[str, Any]]], n: int) -> dict[str, Any]:
    mean = {m: {k: mean_curve([r["curves"][k] for r in rs]) for k in rs[0]["curves"]} for m, rs in runs.items() if rs}
    tpe_final = mean["tpe"]["hypervolume"][-1]
    reach_mean = first_reaching(mean["guided"]["hypervolume"], tpe_final) if tpe_final is not None else None
    per_seed = []
    for g, t in zip(runs["guided"], runs["tpe"]):
        k = first_reaching(g["curves"]["hypervolume"], t["curves"]["hypervolume"][-1])
        per_seed.append({"seed": g["seed"], "trials_to_tpe_final": k, "share": round(k / n, 3) if k else None})
    share = round(reach_mean / n, 3) if reach_mean else None
    return {
        "mean_curves": mean,
        "tpe_final_hypervolume": tpe_final,
        "guided_trials_to_tpe_final": reach_mean,
        "guided_share_to_tpe_final": share,
        "per_seed": per_seed,
        "target_met": bool(share is not None and share <= TARGET_SHARE),
        "seconds": {m: round(sum(r["seconds"] for r in rs), 1) for m, rs in runs.items()},
        "extra_points": {m: sum(r["derived"] for r in rs) for m, rs in runs.items()},
        "rule_trials": {m: sum(r["origins"]["rule"] for r in rs) for m, rs in runs.items()},
        "failed": {m: sum(r["failed"] for r in rs) for m, rs in runs.items()},
    }


def markdown(result: dict[str, Any]) -> str:
    s, n = result["summary"], result["n_trials"]
    mc = s["mean_curves"]
    picks = sorted({max(1, round(n * f)) for f in (0.25, 0.5, 0.6, 0.75, 1.0)})
    rows = []
    for m in result["methods"]:
        c = mc[m]
        rows.append([m, *[c["hypervolume"][k - 1] for k in picks], c["hypervolume_ran_only"][-1],
                     c["smallest_feasible_params"][-1], c["best_score_smaller_than_baseline"][-1],
                     s["rule_trials"][m], s["extra_points"][m], s["seconds"][m]])
    head = ["method", *[f"HV @{k}" for k in picks], "HV ran-only @end", "fewest params feasible @end",
            "best score < baseline size @end", "rule trials", "derived points", "seconds"]
    verdict = "met" if s["target_met"] else "NOT met"
    ref = result["reference_point"]
    return (
        common.header_md("Search quality: random vs TPE vs guided", result)
        + f"\n{len(result['seeds'])} seed(s) x {n} trials per method (means over seeds); reference point: "
        f"score {ref['score']} %, parameters {ref['params_x_original']} x the original model; HV normalised to [0, 1].\n\n"
        + common.md_table(head, rows)
        + f"\n\nPlain TPE's final mean hypervolume: {s['tpe_final_hypervolume']}; guided reaches it after "
        f"{s['guided_trials_to_tpe_final']} of {n} trials (share {s['guided_share_to_tpe_final']}); "
        f"target <= {TARGET_SHARE:.0%}: **{verdict}**. Per seed: "
        + ", ".join(f"seed {r['seed']}: {r['trials_to_tpe_final']}" for r in s["per_seed"]) + ".\n"
    )


if __name__ == "__main__":
    main()
