"""Each benchmark, shrunk (--quick), produces a well-formed JSON + markdown result.

Structure only: the numbers of a shrunk run on a shared machine mean nothing (benchmarks/RESULTS.md
holds the measured ones). The pure parts (hypervolume, slot usage, driver phase costs) are
checked against hand-computed values.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from benchmarks import branching, common, overhead, same_results, search_quality, startup, throughput
from benchmarks.timed_driver import per_trial_costs


def _read(out: Path, name: str) -> tuple[dict, str]:
    data = json.loads((out / f"{name}.json").read_text())
    md = (out / f"{name}.md").read_text()
    assert data["benchmark"] == name
    assert data["machine"]["cores"] and data["machine"]["versions"]["perforatedai"]
    assert {"min", "mean", "max"} <= set(data["load"])
    assert md.startswith("# ") and "load average" in md and "| " in md
    return data, md


def test_hypervolume_by_hand():
    ref = 1000.0
    # one point (score 75, 500 params): (75-50) x (1000-500) over the box 50 x 1000
    assert search_quality.hypervolume([(75.0, 500.0)], ref) == pytest.approx(25 * 500 / (50 * 1000))
    # a dominated point adds nothing; a point outside the box adds nothing
    assert search_quality.hypervolume([(75.0, 500.0), (70.0, 600.0), (40.0, 10.0)], ref) == pytest.approx(0.25)
    # two front points: staircase
    two = search_quality.hypervolume([(60.0, 200.0), (90.0, 800.0)], ref)
    assert two == pytest.approx((10 * 600 + 40 * 200) / 50_000)
    assert search_quality.first_reaching([0.1, 0.2, 0.3], 0.2) == 2
    assert search_quality.first_reaching([0.1], 0.2) is None


def test_slot_usage_and_driver_costs_by_hand(tmp_path):
    t0 = time.time()
    for i, (start, end) in enumerate([(1.0, 5.0), (1.0, 3.0)]):
        d = tmp_path / str(i)
        d.mkdir()
        (d / "launch.json").write_text(json.dumps({"start_time": t0 + start}))
        (d / "result.json").write_text("{}")
        os.utime(d / "result.json", (t0 + end, t0 + end))
    u = throughput.slot_usage(sorted(tmp_path.iterdir()), t0, t0 + 6.0)
    # busy 4 + 2 = 6 slot-seconds; span 1..5 holds 8 slot-seconds, the wall 12
    assert u["busy_slot_seconds"] == pytest.approx(6.0, abs=0.01)
    assert u["idle_share_trial_span"] == pytest.approx(0.25, abs=0.01)
    assert u["idle_share_wall"] == pytest.approx(0.5, abs=0.01)
    events = [{"phase": "launch", "trial": 0, "ms": 5.0}, {"phase": "tell_total", "trial": 0, "ms": 10.0},
              {"phase": "tracking", "trial": 0, "ms": 1.0}, {"phase": "feedback", "trial": 0, "ms": 3.0},
              {"phase": "analysis", "trial": "0", "ms": 7.0}, {"phase": "sweep_start", "trial": None, "ms": 100.0}]
    costs = per_trial_costs(events)
    assert costs == {"0": {"launch": 5.0, "tell": 6.0, "tracking": 1.0, "feedback": 3.0, "analysis": 7.0}}


def test_floor_ratio_by_hand(tmp_path):
    worker, plain = tmp_path / "worker", tmp_path / "plain"
    worker.mkdir()
    plain.mkdir()
    (worker / "metrics.jsonl").write_text('{"epoch": 0, "val": 1.0, "seconds": 1.5, "compute_seconds": 1.0}\n'
                                          '{"epoch": 1, "val": 2.0, "seconds": 2.5, "compute_seconds": 2.0}\n{"epoch": 2, "va')
    (plain / "plain_result.json").write_text('{"best_val": 1.0, "compute_seconds": 1.5}')
    assert common.training_seconds(worker) == pytest.approx(3.0) and common.training_seconds(plain) == pytest.approx(1.5)
    # (3.0 + 1.5) training seconds over 2 slots: a floor of 2.25 s; 9 s of wall is 4x the floor
    assert common.floor_ratio(9.0, [worker, plain], slots=2) == {"floor_s": 2.25, "floor_ratio": 4.0}


def test_overhead_quick(tmp_path):
    overhead.main(["--quick", "--out", str(tmp_path / "out"), "--work", str(tmp_path / "work")])
    data, md = _read(tmp_path / "out", "overhead")
    s = data["summary"]
    assert set(data["runs"]) == {"plain", "driver_end"}
    assert s["same_trial"] is True  # the hand-written script and pai-sweep trained the same thing
    assert set(s["driver_per_trial_ms"]) == set(overhead.PHASES)
    assert all(v >= 0 for v in s["driver_per_trial_ms"].values()) and s["driver_per_trial_ms"]["launch"] > 0
    assert s["ratio_to_plain"]["driver_end"] > 0 and s["median_cpu_seconds"]["plain"] > 0
    g = data["graphs"]
    assert g["csv_files_end"] > 0 and g["csv_only_every_epoch"] == [] and g["csv_contents_differ"] == []
    assert "Driver's own cost" in md and "Same for the analysis" in md
    # the floor: the trial's own pure training seconds; nothing runs faster than it
    assert all(r["floor_s"] > 0 and r["floor_ratio"] > 1 for rs in data["runs"].values() for r in rs)
    assert s["epoch_cost_ratio"]["driver_end"] >= 1 and "floor ratio" in md


def test_throughput_quick(tmp_path):
    throughput.main(["--quick", "--out", str(tmp_path / "out"), "--work", str(tmp_path / "work")])
    data, md = _read(tmp_path / "out", "throughput")
    for side in ("hydra", "pai"):
        run = data["runs"][side][0]
        assert run["trials"] == 2 and len(run["trial_seconds"]) == 2
        assert 0 <= run["idle_share_wall"] <= 1
    assert data["summary"]["speedup"] > 0
    assert data["runs"]["pai"][0]["driver_ms_per_trial"]  # the driver's phases were timed per trial
    assert all(data["runs"][side][0]["floor_ratio"] > 1 for side in ("hydra", "pai"))
    assert "floor ratio" in md
    assert "Speed-up" in md


def test_search_quality_quick(tmp_path):
    search_quality.main(["--quick", "--tasks", "mnist1d", "--out", str(tmp_path / "out"), "--work", str(tmp_path / "work")])
    data, md = _read(tmp_path / "out", "search_quality")
    task = data["tasks"]["mnist1d"]
    assert set(task["runs"]) == {"random", "tpe", "guided"}
    for runs in task["runs"].values():
        sweep = runs[0]
        assert sweep["n_used"] == 1 and sweep["baseline_score"] is not None
        assert sweep["original_params"] and sweep["baseline_params"] == sweep["original_params"]  # the baseline is not downsized
        assert len(sweep["curves"]["hypervolume"]) == len(sweep["curves"]["hypervolume_test"]) == data["n_trials"]
        assert all(p["test"] is not None for p in sweep["points"])  # every point's test score beside its validation one
        assert 0 < sweep["compute_seconds"] and 0 < sweep["wall_trial_seconds"]  # CPU seconds of the trial that ran
    head = data["headline"]
    assert head["task"] == "mnist1d" and head["seeds"] == 1
    assert isinstance(head["beats_tpe_at_equal_compute"], bool)
    # no share where TPE's 2-epoch trial did not beat the baseline: nothing to reach
    summary = task["summary"]
    assert (head["compute_share_to_reach_tpe_final"] is None) == (summary["seeds_where_tpe_beat_the_baseline"] == 0)
    assert summary["compute_share_baseline_left_out"] >= 0
    assert "hypervolume" in md and "Headline" in md


def test_branching_quick(tmp_path):
    branching.main(["--quick", "--out", str(tmp_path / "out"), "--work", str(tmp_path / "work")])
    data, md = _read(tmp_path / "out", "branching")
    assert set(data["sides"]) == {"branching", "off", "off_resume_points"}
    for side in data["sides"].values():
        assert len(side["trials"]) == data["n_trials"] and side["trial_cpu_seconds"] > 0
        assert all(t["status"] == "complete" and t["own_epochs"] <= t["epochs"] for t in side["trials"])
    assert data["sides"]["off"]["branched"] == 0 and data["headline"]["identical_results"] is True
    on = data["sides"]["branching"]  # one trial at a time in --quick: the later trials find the first one's branch point
    assert on["branched"] >= 1 and any(t["own_epochs"] < t["epochs"] for t in on["trials"])
    assert "identical objective values" in md


def test_branching_quick_over_the_dendrite_budget(tmp_path):
    """The grid over max_dendrites and tries: later trials may start after an earlier one's switch."""
    branching.main(["--quick", "--space", "dendrite_budget", "--trials", "4", "--out", str(tmp_path / "out"),
                    "--work", str(tmp_path / "work")])
    data, md = _read(tmp_path / "out", "branching_dendrite_budget")
    assert data["space"] == "dendrite_budget" and data["headline"]["identical_results"] is True
    on = data["sides"]["branching"]
    assert len(on["trials"]) == 4 and on["branched"] >= 1 and on["branched_after_a_switch"] >= 1
    assert on["own_epochs"] < data["sides"]["off"]["own_epochs"]
    assert "sweep.sampler=grid" in md


def test_same_results_quick(tmp_path):
    same_results.main(["--quick", "--out", str(tmp_path / "out"), "--work", str(tmp_path / "work")])
    data, md = _read(tmp_path / "out", "same_results")
    assert data["base"]["commit"] == data["head"]["commit"] and data["head"]["trials"]  # HEAD against itself
    assert data["headline"]["identical"] is True and data["differences"] == [] and "**identical**" in md
    # each side trained in its own folder (a resumed folder would compare a sweep with itself)
    assert {p.name.split("-")[1] for p in (tmp_path / "work").glob("sweep-*")} == {"base", "head"}


def test_same_results_names_what_differs():
    a = [{"number": 0, "origin": "sampler", "state": "COMPLETE", "values": [90.0], "params": {"x": 1}, "chosen_dendrites": 1,
          "findings": ["r"], "branched_from": None}]
    b = [{**a[0], "values": [91.0], "findings": []}]
    assert same_results.compare(a, b) == [{"number": 0, "fields": ["values", "findings"], "base": {"values": [90.0], "findings": ["r"]},
                                           "head": {"values": [91.0], "findings": []}}]
    assert same_results.compare(a, []) == [{"number": 0, "fields": ["missing on head"]}]


def test_hypervolume_against_compute_by_hand():
    sweep = {"original_params": 500.0, "points": [
        {"at": 1, "compute": 10.0, "origin": "sampler", "score": 75.0, "params": 500.0},
        {"at": 1, "compute": 10.0, "origin": "derived", "score": 60.0, "params": 200.0},  # free: with its parent
        {"at": 2, "compute": 25.0, "origin": "sampler", "score": 90.0, "params": 800.0},
    ]}
    assert search_quality.hv_at_compute(sweep, 5.0) == 0.0
    at_10 = search_quality.hv_at_compute(sweep, 10.0)
    assert at_10 == pytest.approx(search_quality.hypervolume([(75.0, 500.0), (60.0, 200.0)], 1000.0))
    assert search_quality.hv_at_compute(sweep, 30.0) > at_10
    assert search_quality.compute_to_reach(sweep, at_10) == 10.0
    assert search_quality.compute_to_reach(sweep, 0.99) is None


def test_startup_quick(tmp_path):
    startup.main(["--quick", "--out", str(tmp_path / "out"), "--work", str(tmp_path / "work")])
    data, md = _read(tmp_path / "out", "startup")
    s = data["summary"]
    assert s["help_s"] > 0
    row = s["no_check_no_mlflow"]
    assert 0 < row["to_worker_start_s"] < row["to_first_epoch_s"] <= row["total_s"]
    assert row["floor_ratio"] > 1 and "floor ratio" in md
    assert "--help" in md


def test_results_have_a_reproducing_command():
    """RESULTS.md names the command of every benchmark module."""
    text = (common.BENCH / "RESULTS.md").read_text()
    for name in ("overhead", "throughput", "search_quality", "startup", "branching", "same_results"):
        assert f"python -m benchmarks.{name}" in text


def test_throughput_grid_is_told_to_the_end():
    """The throughput grid (8 points) asked and told in full: an exhausted GridSampler must not stop the driver."""
    import optuna

    from pai_sweep.compose import compose
    from pai_sweep.search_space import parse_space, suggest
    from pai_sweep.sweep.study import make_sampler

    cfg = compose([common.searchpath_override(), "sweep=bench_throughput"])
    space = parse_space(cfg.sweep.space, cfg)
    study = optuna.create_study(direction="maximize", sampler=make_sampler(cfg.sweep, space, 0))
    seen = set()
    for _ in range(8):
        trial = study.ask()
        seen.add(tuple(sorted(suggest(trial, space).items())))
        study.tell(trial, 1.0)
    assert len(seen) == 8 and len(study.trials) == 8


def test_the_baseline_point_counts_for_every_method_from_compute_0():
    base = {"at": 0, "compute": 0.0, "origin": "baseline", "score": 90.0, "params": 500.0}
    # TPE spent its compute running the original model again; guided found a smaller model
    tpe = {"original_params": 500.0, "compute_seconds": 20.0, "points": [
        base, {"at": 1, "compute": 20.0, "origin": "sampler", "score": 90.0, "params": 500.0}]}
    guided = {"original_params": 500.0, "compute_seconds": 20.0, "points": [
        base, {"at": 1, "compute": 8.0, "origin": "sampler", "score": 70.0, "params": 200.0}]}
    assert search_quality.hv_at_compute(tpe, 0.0) == search_quality.hv_at_compute(tpe, 20.0) > 0
    assert search_quality.compute_share(guided, tpe) == (0.0, 0.0)  # nothing to catch up: TPE added nothing
    # the measure before: the baseline left out credits TPE's re-run, which guided never matches
    share, reached = search_quality.compute_share(search_quality.baseline_left_out(guided), search_quality.baseline_left_out(tpe))
    assert reached is None and share == 1.0

    # in the summary such a seed has nothing to reach: it is left out of the mean share, not counted as 0
    def sweep(seed, points, first=base):
        run = {"seed": seed, "original_params": 500.0, "baseline_score": first["score"], "baseline_params": 500.0, "points": [first, *points],
               "compute_seconds": max(p["compute"] for p in points), "first_trial_compute": min(p["compute"] for p in points),
               "seconds": 1.0, "wall_trial_seconds": 1.0, "derived": 0, "lower_bounds": 0, "origins": {"sampler": 1, "rule": 0},
               "failed": 0}
        return {**run, "curves": search_quality.curves(run, 1, 1.0)}

    rerun = {"at": 1, "compute": 20.0, "origin": "sampler", "score": 90.0, "params": 500.0}  # the original model again
    runs = {
        "tpe": [sweep(0, [rerun]), sweep(1, [{**rerun, "score": 88.0, "params": 300.0}])],
        "guided": [sweep(0, [{**rerun, "compute": 8.0, "score": 70.0, "params": 200.0}]),
                   sweep(1, [{**rerun, "compute": 10.0, "score": 88.0, "params": 300.0}])],
    }
    # a baseline whose hypervolume the 5-decimal curves round up (0.412345678 -> 0.41235): a re-run is still no gain
    odd = {**base, "score": 91.2345678}
    runs["tpe"].append(sweep(2, [{**rerun, "score": 91.2345678}], odd))
    runs["guided"].append(sweep(2, [{**rerun, "compute": 8.0, "score": 70.0, "params": 200.0}], odd))
    runs["random"] = runs["tpe"]
    summary = search_quality.summarise(runs, 1)
    assert [p["tpe_improved"] for p in summary["per_seed"]] == [False, True, False]
    assert summary["seeds_where_tpe_beat_the_baseline"] == 1 and summary["compute_share_to_reach_tpe_final"] == 0.5


def test_resummarise_refuses_runs_stored_without_the_baseline_point(tmp_path):
    # an older result's points have no baseline: summarised as they are they would give the old measure, unsaid
    old = {"tasks": {"digits": {"runs": {"tpe": [{"seed": 0, "points": [
        {"at": 1, "compute": 5.0, "origin": "sampler", "score": 80.0, "params": 300.0}]}]}}}, "n_trials": 1, "tolerance": 1.0}
    path = tmp_path / "old.json"
    path.write_text(json.dumps(old))
    with pytest.raises(SystemExit, match="no baseline point .* pass --work"):
        search_quality.resummarise(path, tmp_path / "out")
    assert not (tmp_path / "out").exists()
