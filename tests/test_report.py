"""The sweep report and the comparison, on a real Optuna study (sqlite) with real trial folders.

build_sweep() writes a sweep folder the way the driver does: config.yaml, study.db, and
trials/<n>/ with run.yaml, metrics.jsonl, result.json, a PerforatedAI pai/ folder and
analysis/findings.json. test_tracking.py and test_mlflow_server.py reuse it.
"""

from __future__ import annotations

import functools
import json
import shutil
from pathlib import Path

import optuna
import pytest
from omegaconf import OmegaConf

from pai_sweep import trial_files as tf
from pai_sweep.cli import main
from pai_sweep.compose import compose
from pai_sweep.errors import SweepError
from pai_sweep.report import compare_sweeps, write_sweep_report
from pai_sweep.schema import RUN_GROUPS

PAI_FIXTURE = Path(__file__).parent / "fixtures" / "pai_digits_capacity_test"
MD, INIT = "dendrites.max_dendrites", "dendrites.candidate_weight_initialization_multiplier"
DISTS = {MD: optuna.distributions.IntDistribution(0, 4),
         INIT: optuna.distributions.FloatDistribution(1e-3, 0.1, log=True)}


def _values(md: int, init: float, efficiency: bool, shift: float) -> list[float]:
    score = round(90.0 + 2.0 * md - 20.0 * init + shift, 4)
    return [score, 1000.0 + 600.0 * md] if efficiency else [score]


@functools.cache
def _run_yaml(md: int) -> str:
    run_cfg = compose([f"dendrites.max_dendrites={md}", "train.max_epochs=3"])
    return OmegaConf.to_yaml(OmegaConf.masked_copy(run_cfg, list(RUN_GROUPS)))


@functools.cache
def _config_yaml(name: str, efficiency: bool) -> str:
    cfg = compose([f"sweep.name={name}", f"objective={'efficiency' if efficiency else 'accuracy'}"])
    return OmegaConf.to_yaml(cfg, resolve=True)


def _trial_folder(sweep_dir: Path, number: int, md: int, values: list[float], ok: bool, findings: list[str],
                  n_params: int) -> Path:
    folder = sweep_dir / "trials" / str(number)
    folder.mkdir(parents=True)
    (folder / tf.RUN_CONFIG).write_text(_run_yaml(md))
    for epoch in range(3):
        tf.append_metrics(folder, tf.EpochRecord(epoch=epoch, val=80.0 + epoch, train=85.0 + epoch, test=79.0 + epoch,
                                                  loss=1.0 / (epoch + 1), lr=0.01 / (epoch + 1), params=1000 + 600 * epoch,
                                                  dendrites=epoch, seconds=0.5))
    if ok:
        tf.write_result(folder, tf.TrialResult(status="complete", reason="pai_complete", best_val=values[0], best_test=values[0] - 1,
                                               params=n_params, base_params=1000, original_params=4000, dendrites=md, epochs=3))
    else:
        tf.write_result(folder, tf.TrialResult(status="failed", reason="nan loss at epoch 2", epochs=2))
    shutil.copytree(PAI_FIXTURE, folder / "pai")
    (folder / "analysis").mkdir()
    (folder / "analysis" / "findings.json").write_text(json.dumps(
        {"findings": [{"rule_id": r, "severity": "warning", "evidence": {}, "recommendation": {}} for r in findings]}))
    (folder / "analysis" / "report.md").write_text(f"# trial {number}\n")
    (folder / tf.LAUNCH).write_text(json.dumps({"launcher": "slurm", "job_id": f"{1000 + number}"}))
    return folder


def build_sweep(root: Path, name: str = "demo", efficiency: bool = True, shift: float = 0.0,
                sampler_params: tuple = ((1, 0.01), (3, 0.05), (2, 0.002), (4, 0.08)),
                infeasible: tuple = ()) -> tuple[Path, optuna.Study]:
    """A finished sweep: a baseline, sampler trials, one failed, one rule-enqueued and one derived trial.

    infeasible: trial numbers marked below the baseline constraint (user attr feasible=False).
    """
    sweep_dir = Path(root) / name
    sweep_dir.mkdir(parents=True)
    (sweep_dir / "config.yaml").write_text(_config_yaml(name, efficiency))
    directions = ["maximize", "minimize"] if efficiency else ["maximize"]
    study = optuna.create_study(storage=f"sqlite:///{sweep_dir / 'study.db'}", study_name=name, directions=directions)

    def run(params: dict, origin: str, findings: list[str], ok: bool = True, attrs: dict | None = None) -> None:
        study.enqueue_trial(params, user_attrs={"origin": origin, **(attrs or {})})
        trial = study.ask()
        md = trial.suggest_int(MD, 0, 4)
        init = trial.suggest_float(INIT, 1e-3, 0.1, log=True)
        values = _values(md, init, efficiency, shift)
        if origin == "baseline":  # the plain model: more parameters, a fair score
            values = [round(93.0 + shift, 4), 5000.0] if efficiency else [round(93.0 + shift, 4)]
        n_params = 5000 if origin == "baseline" else 1000 + 600 * md
        _trial_folder(sweep_dir, trial.number, md, values, ok, findings, n_params)
        trial.set_user_attr("score", values[0])
        trial.set_user_attr("chosen_params", n_params)
        trial.set_user_attr("chosen_dendrites", md)
        if trial.number in infeasible:
            trial.set_user_attr("feasible", False)
        if ok:
            study.tell(trial, values)
        else:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)

    run({MD: 0, INIT: 0.01}, "baseline", [])
    for i, (md, init) in enumerate(sampler_params):
        run({MD: md, INIT: init}, "sampler", ["diminishing_returns", "overfitting"][: 1 + i % 2],
            attrs={"design": "size_ladder"} if i == 0 else None)  # the first is a size-ladder trial
    run({MD: 2, INIT: 0.05}, "sampler", ["dendrites_never_added"], ok=False)
    # started from trial 1's state before its first switch (branching)
    run({MD: 4, INIT: 0.001}, "rule:optimal_dendrites", ["diminishing_returns"], attrs={"branched_from": 1, "branch_epoch": 1})
    best_md = 1
    study.add_trial(optuna.trial.create_trial(
        params={MD: best_md, INIT: 0.01}, distributions=DISTS, values=_values(best_md, 0.01, efficiency, shift - 0.5),
        user_attrs={"origin": "derived", "parent": 3, "dendrites": best_md, "status": "complete",
                    "reason": "architecture with 1 dendrite(s) measured by trial 3"}))
    return sweep_dir, study


def embedded_images(page: Path) -> dict[str, Path]:
    """alt -> the PNG file beside the page, for every <img> in it; each must be a data: URI holding that very PNG
    (no relative src that breaks once the page is shown without its folder)."""
    import base64
    from html.parser import HTMLParser

    imgs: list[dict] = []

    class Imgs(HTMLParser):
        def handle_starttag(self, tag, attrs):
            if tag == "img":
                imgs.append(dict(attrs))

    Imgs().feed(page.read_text())
    assert imgs, f"no image in {page}"
    found = {}
    for img in imgs:
        head, _, payload = img["src"].partition(",")
        assert head == "data:image/png;base64", (img["alt"], img["src"][:60])
        png = base64.b64decode(payload, validate=True)
        assert png.startswith(b"\x89PNG\r\n\x1a\n")
        match = [p for p in page.parent.glob("*.png") if p.read_bytes() == png]
        assert len(match) == 1, img["alt"]
        found[img["alt"]] = match[0]
    return found


def _expected_front(study: optuna.Study) -> set[int]:
    return {t.number for t in study.best_trials}


def test_report_numbers_match_the_study(tmp_path):
    sweep_dir, study = build_sweep(tmp_path)
    out = write_sweep_report(sweep_dir)
    assert out == sweep_dir / "report"
    rep = json.loads((out / "report.json").read_text())
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]

    # Pareto front: the same trials as Optuna's own multi-objective best_trials, with their values.
    assert {p["trial"] for p in rep["pareto"]} == _expected_front(study)
    by_number = {t.number: t for t in study.trials}
    for p in rep["pareto"]:
        assert [p["objective"], p["params"]] == by_number[p["trial"]].values
    assert [p["params"] for p in rep["pareto"]] == sorted(p["params"] for p in rep["pareto"])
    assert rep["baseline"] == {"trial": 0, "origin": "baseline", "objective": 93.0, "params": 5000.0}
    # Parameters saved at equal accuracy: the smallest trial within objective.tolerance (1.0) of 93.0.
    scores = {t.number: (t.user_attrs.get("score", t.values[0]), t.values[1]) for t in complete if t.number != 0}
    want_match = min((p, n) for n, (sc, p) in scores.items() if sc >= 92.0)
    assert (rep["baseline_match"]["params"], rep["baseline_match"]["trial"]) == want_match
    assert rep["baseline_match"]["params_saved"] == pytest.approx(1 - want_match[0] / 5000)

    # Table: every trial, finished ones best first by the first objective, then the failed one.
    table = rep["trials"]
    assert len(table) == len(study.trials)
    want = [t.number for t in sorted(complete, key=lambda t: (-t.values[0], t.number))]
    assert [r["number"] for r in table[: len(complete)]] == want
    assert [r["objective"] for r in table[: len(complete)]] == [by_number[n].values[0] for n in want]
    failed = table[-1]
    assert failed["state"] == "FAIL" and failed["reason"] == "nan loss at epoch 2"
    assert {r["origin"] for r in table} == {"baseline", "sampler", "rule:optimal_dendrites", "derived"}

    # Findings: counted per trial that fired them (analysis/findings.json of each trial folder).
    counts = {f["rule_id"]: f["trials"] for f in rep["findings"]}
    assert counts == {"diminishing_returns": 5, "overfitting": 2, "dendrites_never_added": 1}
    assert rep["findings"][0]["rule_id"] == "diminishing_returns"

    # Rule-enqueued vs sampler: trial 6 (max_dendrites 4, init 0.001) beats every sampler trial.
    sampler_best = max(t.values[0] for t in complete if t.user_attrs["origin"] == "sampler")
    (rule,) = rep["rules_vs_sampler"]
    assert rule["trial"] == 6 and rule["rule"] == "optimal_dendrites"
    assert rule["sampler_best"] == sampler_best and rule["beat_overall"] is (by_number[6].values[0] > sampler_best)

    # Importances: two parameters vary over enough trials.
    assert set(rep["importances"]) == {MD, INIT}, rep["importances_note"]
    for name in ("report.md", "report.html", "pareto.png", "progress.png", "importances.png"):
        assert (out / name).stat().st_size > 0, name
    md_text = (out / "report.md").read_text()
    assert "## Trials, best first" in md_text and "optimal_dendrites" in md_text and "![Pareto front](pareto.png)" in md_text
    # where a trial started: the rule trial branched from trial 1's state after its first epoch
    assert "| started |" in md_text and "branch of #1 @1" in md_text
    assert "started from another trial's state (branching, continuing): 1" in md_text
    assert md_text.count("sampler (size ladder)") == 1  # the trial the size ladder fixed, in the trials table
    # report.html stands alone (MLflow's artifact viewer shows it without its folder): every plot inside it.
    assert embedded_images(out / "report.html") == {"Pareto front": out / "pareto.png", "objective per trial": out / "progress.png",
                                                    "parameter importances": out / "importances.png"}


def test_report_marks_infeasible_and_single_objective(tmp_path):
    # The best trial (the rule's, 6) falls below the baseline constraint: it must leave the front.
    sweep_dir, study = build_sweep(tmp_path, efficiency=False, infeasible=(6,))
    best = max((t for t in study.trials if t.values), key=lambda t: t.values[0])
    assert best.number == 6
    rep = json.loads((write_sweep_report(sweep_dir, tmp_path / "out") / "report.json").read_text())
    assert rep["directions"] == ["maximize"]
    front = {p["trial"] for p in rep["pareto"]}
    assert best.number not in front and front
    # Single objective: parameters come from the chosen architecture (user attr), never None for finished trials.
    assert all(r["params"] == 1000 + 600 * r["dendrites"] for r in rep["trials"] if r["state"] == "COMPLETE" and r["origin"] == "sampler")


def test_report_and_compare_cli(tmp_path, capsys):
    guided, _ = build_sweep(tmp_path, "guided")
    plain, _ = build_sweep(tmp_path, "plain", shift=-1.0, sampler_params=((1, 0.09), (2, 0.05)))
    assert main(["report", str(guided)]) == 0
    assert str(guided / "report" / "report.md") in capsys.readouterr().out

    assert main(["compare", str(guided), str(plain), "--out", str(tmp_path / "cmp")]) == 0
    assert "compare.md" in capsys.readouterr().out
    cmp = json.loads((tmp_path / "cmp" / "compare.json").read_text())
    by_name = {s["sweep"]: s for s in cmp["sweeps"]}
    assert set(by_name) == {"guided", "plain"}
    assert by_name["guided"]["best"] > by_name["plain"]["best"]
    # derived trials are free: 8 trials in the guided study, 7 of them ran
    assert by_name["guided"]["trials"] == 8 and by_name["guided"]["trials_used"] == 7
    assert (tmp_path / "cmp" / "best_vs_trials.png").stat().st_size > 0 and (tmp_path / "cmp" / "pareto.png").exists()
    assert set(embedded_images(tmp_path / "cmp" / "compare.html")) == {"best objective vs trials used", "Pareto fronts"}


def test_report_bad_folders_are_one_line(tmp_path, capsys):
    assert main(["report", str(tmp_path / "missing")]) == 2
    assert "is not a folder" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    # the sweep command's override form names the folder: say to pass it as it is
    assert main(["report", f"sweep.dir={tmp_path / 'empty'}"]) == 2
    err = capsys.readouterr().err
    assert f"pass the folder itself (pai-sweep report {tmp_path / 'empty'})" in err and len(err.strip().splitlines()) == 1
    assert main(["report", str(tmp_path / "empty")]) == 2
    err = capsys.readouterr().err
    assert "not a sweep folder" in err and len(err.strip().splitlines()) == 1
    with pytest.raises(SweepError, match="two or more"):
        compare_sweeps([tmp_path / "empty"])


def test_report_reads_the_storage_named_in_config(tmp_path):
    sweep_dir, study = build_sweep(tmp_path, "stored")
    # The study lives elsewhere (e.g. a database server): config.yaml's sweep.storage says where.
    elsewhere = tmp_path / "db" / "optuna.db"
    elsewhere.parent.mkdir()
    (sweep_dir / "study.db").rename(elsewhere)
    text = (sweep_dir / "config.yaml").read_text().replace("storage: null", f"storage: sqlite:///{elsewhere}")
    (sweep_dir / "config.yaml").write_text(text)
    rep = json.loads((write_sweep_report(sweep_dir) / "report.json").read_text())
    assert rep["sweep"] == "stored" and len(rep["trials"]) == len(study.trials)


def test_no_importances_when_every_trial_has_the_same_objective():
    """Ten trials that all scored the same (a grid whose knobs never acted): Optuna's evaluator would still split
    the importance evenly between the searched keys; the report says why there is nothing to show instead."""
    from pai_sweep.report.data import SweepData, TrialRow, importances

    rows = [TrialRow(number=i, state="COMPLETE", origin="sampler", objective=93.33, params=2870.0, score=93.33, dendrites=1,
                     feasible=None, status="complete", reason=None, search={"max_dendrites": i % 5, "tries": i % 2})
            for i in range(10)]
    data = SweepData(name="grid", sweep_dir="unused", directions=["maximize"], objective_name="accuracy", rows=rows,
                     search_keys=["max_dendrites", "tries"])
    found, note = importances(data)
    assert found == {} and "same objective (93.33)" in note
