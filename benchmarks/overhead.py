"""Overhead: one fixed trial, run by a hand-written PerforatedAI script and through pai-sweep.

Sides, interleaved round by round (same model, data, seed, knobs, epochs; same threads):
  plain          benchmarks/plain_trial.py: PerforatedAI's setup-guide integration steps, library defaults (graphs every epoch)
  run_every      `pai-sweep run ... train.graphs=every_epoch`: the same per-epoch work through the tool
  run_end        `pai-sweep run ...` with the default train.graphs=end (PNG once, CSVs every epoch)
  driver_every   a one-trial sweep (benchmarks/timed_driver.py: the real CLI with its phases timed), graphs every epoch
  driver_end     the same with graphs=end
Reports wall-time ratios against `plain`, the driver's own cost per trial in ms (launch,
detect, analysis, tell, tracking, feedback) and per sweep (start, end), the per-epoch cost of
PerforatedAI's graph drawing, and whether graphs=end leaves the CSVs the analysis reads as
they are with every_epoch (file sets, contents, findings).

    python -m benchmarks.overhead              # 2 rounds of a ~30 s trial (~8 min)
    python -m benchmarks.overhead --quick      # 1 round of a 3-epoch trial
"""

from __future__ import annotations

import json
import re
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import common
from benchmarks.timed_driver import per_trial_costs

TARGET = 1.05
# CPU seconds are counted for the processes a side waits for; the driver's warm-started workers are
# forked by a forkserver it does not reap, so their CPU time is not seen and driver sides get none
CPU_SIDES = ("plain", "run_every", "run_end")
ALL_SIDES = ("plain", "run_every", "run_end", "driver_every", "driver_end")
PHASES = ("launch", "detect", "analysis", "tell", "tracking", "feedback")


def trial_overrides(epochs: int, limit: int | None = None) -> list[str]:
    return [
        "model=small_cnn", "data=digits", *([f"data.limit={limit}"] if limit else []), "train.device=cpu", "train.seed=0",
        f"train.max_epochs={epochs}",
        "train.optimizer.args.lr=0.02", "dendrites.max_dendrites=2", "dendrites.n_epochs_to_switch=3",
        "dendrites.candidate_weight_initialization_multiplier=0.01", "dendrites.improvement_threshold=0.0",
    ]


def write_plain_config(overrides: list[str], path: Path) -> None:
    from pai_sweep.compose import compose
    from pai_sweep.preflight import write_run_config

    write_run_config(compose(overrides), path)


def side_commands(name: str, work: Path, overrides: list[str]) -> tuple[list[str], Path]:
    """(command, the folder holding the trial's files)."""
    d = work / name
    if name == "plain":
        return [sys.executable, str(common.BENCH / "plain_trial.py"), str(work / "plain_cfg" / "run.yaml"), str(d)], d
    graphs = "train.graphs=every_epoch" if name.endswith("every") else "train.graphs=end"
    if name.startswith("run"):
        return [*common.pai_sweep_cmd(), "run", *overrides, graphs, "--dir", str(d)], d
    sweep = [common.searchpath_override(), "sweep=bench_overhead", f"sweep.name={name}", f"sweep.dir={d}", "tracking=mlflow",
             f"tracking.uri=sqlite:///{work / 'mlflow.db'}"]
    return [sys.executable, "-m", "benchmarks.timed_driver", str(work / f"{name}.timings.json"), *overrides, graphs, *sweep], d / "trials" / "0"


def trial_facts(name: str, trial_dir: Path) -> dict[str, Any]:
    if name == "plain":
        r = json.loads((trial_dir / "plain_result.json").read_text())
        return {"best_val": r["best_val"], "epochs": r["epochs"], "params": r["params"],
                "epoch_seconds": round(r["train_loop_seconds"] / max(r["epochs"], 1), 4),
                "training_seconds": round(common.training_seconds(trial_dir), 3),
                "epoch_cost_ratio": common.ratio(r["train_loop_seconds"], r.get("compute_seconds") or 0)}
    from pai_sweep.trial_files import iter_metrics, read_result

    r = read_result(trial_dir)
    recs = list(iter_metrics(trial_dir))
    facts = {"best_val": r.best_val, "epochs": r.epochs, "params": r.params,
             "epoch_seconds": round(statistics.median(x.seconds for x in recs), 4) if recs else None,  # median: load spikes hit single epochs
             "training_seconds": round(common.training_seconds(trial_dir), 3),
             # an epoch's whole cost over its pure training (train + scoring): median over the epochs
             "epoch_cost_ratio": round(statistics.median(x.seconds / x.compute_seconds for x in recs if x.compute_seconds), 3)
             if any(x.compute_seconds for x in recs) else None}
    launch = trial_dir / "launch.json"
    if launch.exists():  # through the driver: the worker's own span, launch to result.json
        facts["worker_seconds"] = round((trial_dir / "result.json").stat().st_mtime - json.loads(launch.read_text())["start_time"], 3)
    return facts


_STAMP = re.compile(r"_\d{2}\.\d{2}\.\d{4}\.\d{2}\.\d{2}\.\d{2}_")


def compare_outputs(every: Path, end: Path) -> dict[str, Any]:
    """graphs=end vs every_epoch: the CSV files PerforatedAI wrote and what the analysis makes of them."""
    def files(d: Path) -> dict[str, Path]:
        return {_STAMP.sub("_<time>_", p.name): p for p in (d / "pai").iterdir() if p.is_file()}

    a, b = files(every), files(end)
    csv_a = {k for k in a if k.endswith(".csv")}
    csv_b = {k for k in b if k.endswith(".csv")}
    # Times CSVs hold wall-clock seconds: they differ between any two runs
    differing = sorted(k for k in csv_a & csv_b if "Times" not in k and a[k].read_bytes() != b[k].read_bytes())
    out: dict[str, Any] = {
        "csv_files_every_epoch": len(csv_a), "csv_files_end": len(csv_b),
        "csv_only_every_epoch": sorted(csv_a - csv_b), "csv_only_end": sorted(csv_b - csv_a),
        "csv_contents_differ": differing,
        "png_every_epoch": sorted(k for k in a if k.endswith(".png")), "png_end": sorted(k for k in b if k.endswith(".png")),
    }
    try:
        from pai_sweep.analysis import analyze

        fa, fb = analyze(every), analyze(end)
        out["findings_every_epoch"] = sorted(f.rule_id for f in fa.findings)
        out["findings_end"] = sorted(f.rule_id for f in fb.findings)
        out["chosen_dendrites"] = [getattr(fa.choice, "dendrites", None), getattr(fb.choice, "dendrites", None)]
    except Exception as exc:  # noqa: BLE001 - the file comparison stands on its own
        out["analysis_error"] = f"{type(exc).__name__}: {exc}"
    out["same_for_analysis"] = not (out["csv_only_every_epoch"] or out["csv_only_end"] or differing) and \
        out.get("findings_every_epoch") == out.get("findings_end")
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = common.base_parser(__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=None, help="rounds of all sides (default 2; --quick 1)")
    p.add_argument("--epochs", type=int, default=None, help="the trial's epochs (default 30; --quick 3)")
    args = p.parse_args(argv)
    rounds = args.rounds or (1 if args.quick else 2)
    epochs = args.epochs or (2 if args.quick else 30)
    work = args.work or Path(tempfile.mkdtemp(prefix="bench_overhead_"))
    overrides = trial_overrides(epochs, 200 if args.quick else None)
    # --quick runs only plain and driver_end: the graph comparison then sets the plain script's folder
    # (library defaults: graphs every epoch) against the driver's trial (graphs=end)
    sides = ("plain", "driver_end") if args.quick else ALL_SIDES
    every = "run_every" if "run_every" in sides else "plain"
    end = "run_end" if "run_end" in sides else "driver_end/trials/0"
    runs: dict[str, list[dict[str, Any]]] = {s: [] for s in sides}
    with common.LoadSampler() as load:
        for r in range(rounds):
            rwork = common.fresh_dir(work / f"round{r}")
            write_plain_config(overrides, rwork / "plain_cfg")
            for side in (sides if r % 2 == 0 else sides[::-1]):  # odd rounds in reverse: a load trend hits both ends
                cmd, trial_dir = side_commands(side, rwork, overrides)
                run = common.run_timed(cmd, cwd=rwork, env=common.child_env(), log=rwork / f"{side}.log")
                common.check_ok(run, side)
                entry = {"seconds": run["seconds"], "cpu_seconds": run["cpu_seconds"] if side in CPU_SIDES else None,
                         **trial_facts(side, trial_dir)}
                entry.update(common.floor_ratio(run["seconds"], [trial_dir], slots=1))
                timings = rwork / f"{side}.timings.json"
                if timings.exists():
                    entry["driver"] = driver_costs(json.loads(timings.read_text()))
                    entry["phases"] = driver_phases(json.loads(timings.read_text()), trial_dir, run["seconds"])
                runs[side].append(entry)
                print(f"round {r} {side}: {run['seconds']:.1f} s, best_val {entry['best_val']:.2f}", flush=True)
        graphs = compare_outputs(work / "round0" / every, work / "round0" / end)
        graphs["every_epoch_side"] = every
    result = {
        "benchmark": "overhead", "command": common.command_line(), "machine": common.machine_info(), "load": load.summary(),
        "quick": args.quick, "rounds": rounds, "trial": overrides, "target": f"wall time through the driver / plain <= {TARGET} on a ~30 s trial (same graphs)",
        "runs": runs, "summary": summarise(runs), "graphs": graphs,
    }
    common.write_result("overhead", result, markdown(result), args.out)
    return result


def driver_costs(timings: dict[str, Any]) -> dict[str, Any]:
    events = timings["events"]
    trials = {k: v for k, v in per_trial_costs(events).items() if "launch" in v}
    per_trial = {ph: round(statistics.mean(t.get(ph, 0.0) for t in trials.values()), 2) for ph in PHASES} if trials else {}
    sweep = {e["phase"]: e["ms"] for e in events if e["phase"] in ("sweep_start", "sweep_end", "compose")}
    return {"per_trial_ms": per_trial, "per_trial_total_ms": round(sum(per_trial.values()), 1),
            "per_sweep_ms": sweep, "wall_seconds": round(timings["t_end"] - timings["t_start"], 3)}


def driver_phases(timings: dict[str, Any], trial_dir: Path, command_seconds: float) -> dict[str, float]:
    """Where a one-trial sweep's wall went (s): the driver's start, the wait for the warm server (first fork), the
    worker, the driver's work after the trial, and what is left outside main (interpreter start and exit)."""
    t0, t_end = timings["t_start"], timings["t_end"]
    fork = json.loads((trial_dir / "launch.json").read_text())["start_time"]
    ended = (trial_dir / "result.json").stat().st_mtime
    loop = next((e["end"] for e in timings["events"] if e["phase"] == "sweep_start"), t0)
    return {"start": round(loop - t0, 3), "wait_for_server": round(fork - loop, 3), "worker": round(ended - fork, 3),
            "after_trial": round(t_end - ended, 3), "outside_main": round(command_seconds - (t_end - t0), 3)}


def summarise(runs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    med = {s: statistics.median(r["seconds"] for r in rs) for s, rs in runs.items()}
    best = {s: min(r["seconds"] for r in rs) for s, rs in runs.items()}  # best of the rounds: the least disturbed run
    cpu = {s: statistics.median(r["cpu_seconds"] for r in rs) for s, rs in runs.items() if s in CPU_SIDES}
    plain = med["plain"]
    out: dict[str, Any] = {"best_seconds": {s: round(v, 2) for s, v in best.items()},
                           "best_ratio_to_plain": {s: common.ratio(v, best["plain"]) for s, v in best.items() if s != "plain"},
                           "median_seconds": {s: round(v, 2) for s, v in med.items()},
                           "ratio_to_plain": {s: common.ratio(v, plain) for s, v in med.items() if s != "plain"},
                           "median_cpu_seconds": {s: round(v, 2) for s, v in cpu.items()},
                           "cpu_ratio_to_plain": {s: common.ratio(v, cpu["plain"]) for s, v in cpu.items() if s != "plain"}}
    out["floor_ratio"] = {s: round(statistics.median(r["floor_ratio"] for r in rs), 3) for s, rs in runs.items()
                          if all(r.get("floor_ratio") for r in rs)}
    out["epoch_cost_ratio"] = {s: round(statistics.median(r["epoch_cost_ratio"] for r in rs), 3) for s, rs in runs.items()
                               if all(r.get("epoch_cost_ratio") for r in rs)}
    target_side = "driver_every" if "driver_every" in runs else "driver_end"
    out["target_side"] = target_side
    out["same_trial"] = len({round(r["best_val"], 6) for rs in runs.values() for r in rs}) == 1
    out["best_val"] = {s: rs[0]["best_val"] for s, rs in runs.items()}
    ev = min(r["epoch_seconds"] for r in runs["run_every" if "run_every" in runs else "plain"])
    en = min(r["epoch_seconds"] for r in runs["run_end" if "run_end" in runs else "driver_end"])
    out["epoch_seconds"] = {"every_epoch": ev, "end": en, "graph_cost_per_epoch": round(ev - en, 4)}
    drv = [r["driver"] for s in ("driver_every", "driver_end") for r in runs.get(s, [])]
    out["driver_per_trial_ms"] = {ph: round(statistics.median(d["per_trial_ms"].get(ph, 0.0) for d in drv), 2) for ph in PHASES}
    out["driver_per_trial_total_ms"] = round(sum(out["driver_per_trial_ms"].values()), 1)
    out["driver_per_sweep_ms"] = {k: round(statistics.median(d["per_sweep_ms"].get(k, 0.0) for d in drv), 1)
                                  for k in ("compose", "sweep_start", "sweep_end")}
    # the trial itself through the driver (worker span + the driver's per-trial work), against the plain script
    worker = statistics.median(r["worker_seconds"] for r in runs[target_side])
    out["driver_trial_ratio"] = common.ratio(worker + out["driver_per_trial_total_ms"] / 1000, plain)
    out["target_met"] = bool(out["best_ratio_to_plain"][target_side] <= TARGET)
    if "run_end" in runs and "driver_end" in runs:  # issue 17: a one-trial sweep <= 1.05x `pai-sweep run` of the same trial
        per_round = [round(d["seconds"] / r["seconds"], 3) for d, r in zip(runs["driver_end"], runs["run_end"])]
        out["sweep_to_run"] = {"per_round": per_round, "best": common.ratio(best["driver_end"], best["run_end"]),
                               "median": round(statistics.median(per_round), 3), "target": TARGET,
                               "met": bool(min(per_round) <= TARGET)}
    phases = [r["phases"] for r in runs.get("driver_end", []) if "phases" in r]
    if phases:
        out["driver_end_phases_s"] = {k: round(statistics.median(p[k] for p in phases), 3) for k in phases[0]}
    return out


def markdown(result: dict[str, Any]) -> str:
    s = result["summary"]
    rows = [[side, s["best_seconds"][side], s["best_ratio_to_plain"].get(side, 1.0), s["median_seconds"][side],
             s["ratio_to_plain"].get(side, 1.0), s["median_cpu_seconds"].get(side, "-"),
             s["cpu_ratio_to_plain"].get(side, 1.0 if side == "plain" else "-"), result["runs"][side][0]["best_val"], result["runs"][side][0]["epochs"],
             result["runs"][side][0]["epoch_seconds"], s["floor_ratio"].get(side, "-"), s["epoch_cost_ratio"].get(side, "-")]
            for side in ALL_SIDES if side in result["runs"]]
    drow = [[ph, s["driver_per_trial_ms"][ph]] for ph in PHASES] + [["total per trial", s["driver_per_trial_total_ms"]]]
    drow += [[f"per sweep: {k}", v] for k, v in s["driver_per_sweep_ms"].items()]
    g = result["graphs"]
    verdict = "met" if s["target_met"] else "NOT met"
    return (
        common.header_md("Overhead: hand-written script vs pai-sweep", result)
        + f"\nTrial: `{' '.join(result['trial'])}`; {result['rounds']} round(s), medians. Same trial on every side "
        f"(equal best validation score): {s['same_trial']}.\n\n"
        + common.md_table(["side", "best wall s", "best ratio", "median wall s", "median ratio", "CPU s", "CPU ratio", "best val",
                           "epochs", "s per epoch (median; plain: mean)", "floor ratio", "epoch / its training"], rows)
        + "\n\nFloor ratio: wall / the trial's pure training seconds (forward, backward, scoring: metrics.jsonl's "
        "compute_seconds, the script's own sum for plain), medians. Epoch / its training: an epoch's whole cost over "
        "its pure training (median over epochs; plain: the loop over its training).\n"
        + "\n\nCPU s: the command and every process it waited for; none for the driver sides, whose warm-started "
        "workers are forked by a forkserver the driver does not reap. Under contention CPU time grows too (torch's "
        "OpenMP threads spin while they wait), so it is no cleaner than wall time here.\n"
        + f"\nTarget {result['target']}: **{verdict}** ({s['target_side']}: best-of-rounds wall ratio "
        f"{s['best_ratio_to_plain'][s['target_side']]}, median {s['ratio_to_plain'][s['target_side']]}). "
        f"The trial alone through the driver (worker span + per-trial driver work): ratio {s['driver_trial_ratio']}.\n\n"
        + _sweep_to_run_md(s)
        + "Driver's own cost (ms, median over driver runs):\n\n"
        + common.md_table(["phase", "ms"], drow)
        + f"\n\nGraph drawing: {s['epoch_seconds']['every_epoch']} s per epoch with every_epoch, {s['epoch_seconds']['end']} "
        f"with end: {s['epoch_seconds']['graph_cost_per_epoch']} s per epoch (least disturbed round). graphs=end vs every_epoch: "
        f"{g['csv_files_end']} vs {g['csv_files_every_epoch']} CSV files, only in every_epoch: {g['csv_only_every_epoch'] or 'none'}, "
        f"only in end: {g['csv_only_end'] or 'none'}, contents differ (Times CSVs excluded): {g['csv_contents_differ'] or 'none'}; "
        f"findings {g.get('findings_end')} vs {g.get('findings_every_epoch')}; PNGs {len(g['png_end'])} vs {len(g['png_every_epoch'])}. "
        f"Same for the analysis: **{g['same_for_analysis']}** (every_epoch side: {g['every_epoch_side']}).\n"
    )


def _sweep_to_run_md(s: dict[str, Any]) -> str:
    if "sweep_to_run" not in s:
        return ""
    r = s["sweep_to_run"]
    text = (f"One-trial sweep (driver_end) / `pai-sweep run` (run_end), same round: {r['per_round']} (best of rounds "
            f"{r['best']}, median {r['median']}; target <= {r['target']}: **{'met' if r['met'] else 'NOT met'}**).\n\n")
    if "driver_end_phases_s" in s:
        p = s["driver_end_phases_s"]
        text += ("Where the one-trial sweep's wall went (s, medians): " + ", ".join(f"{k} {v}" for k, v in p.items())
                 + " (start: the command to the loop's start; wait_for_server: the loop's start to the first fork; worker: "
                 "fork to result.json; after_trial: analysis, tell, summary, report, MLflow; outside_main: interpreter "
                 "start before the timer and exit).\n\n")
    return text


if __name__ == "__main__":
    main()
