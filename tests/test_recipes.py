"""Every recipe runs end to end, shrunk (tiny widths, digits/digits32, 1-3 trials, few epochs)."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest

from pai_sweep.cli import main
from pai_sweep.compose import recipe_names

# Shrinking overrides per recipe; what is left is the recipe's own model, preset, objective and space.
SHRINK = {
    "quick_cpu": ["sweep.n_trials=2", "train.max_epochs=5", "data.limit=300", "dendrites.n_epochs_to_switch=1"],
    "cnn_accuracy": ["sweep.n_trials=1", "train.max_epochs=3", "data.limit=200", "sweep.check_first=false"],
    "transformer_accuracy": ["sweep.n_trials=1", "train.max_epochs=3", "data.limit=200", "model.d_model=8", "sweep.check_first=false"],
    "custom_template": ["sweep.n_trials=2", "train.max_epochs=5", "dendrites.n_epochs_to_switch=1", "sweep.check_first=false"],
    "mnist1d_efficiency": [
        "data.limit=200", "sweep.n_trials=2", "train.max_epochs=3", "dendrites.n_epochs_to_switch=1", "sweep.check_first=false",
    ],
    "resnet_efficiency": [
        "data=digits32", "data.limit=64", "model.width_mult=0.0625", "sweep.n_trials=3", "sweep.in_flight=2",
        "train.max_epochs=2", "dendrites.n_epochs_to_switch=1", "sweep.check_first=false",
        "sweep.space={downsize.family:{type:categorical,choices:[resnet18,mobilenet_v2]}}",
    ],
}
COMMON = ["tracking=off", "sweep.rule_trials=false"]


def test_every_recipe_has_a_shrunk_run():
    assert set(SHRINK) == set(recipe_names()), "add the new recipe to SHRINK so it runs in CI"


def _run(name: str, tmp_path: Path) -> tuple[optuna.Study, Path]:
    sweep_dir = tmp_path / "sweep"
    code = main([f"+recipe={name}", f"sweep.dir={sweep_dir}", *COMMON, *SHRINK[name]])
    assert code == 0
    study = optuna.load_study(study_name=name, storage=f"sqlite:///{sweep_dir / 'study.db'}")
    return study, sweep_dir


@pytest.mark.parametrize("name", ["quick_cpu", "cnn_accuracy", "transformer_accuracy"])
def test_accuracy_recipes_run(name, tmp_path):
    study, sweep_dir = _run(name, tmp_path)
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE and t.user_attrs.get("origin") != "derived"]
    assert done, f"no trial of {name} completed"
    for t in done:
        assert (Path(t.user_attrs["trial_dir"]) / "analysis" / "findings.json").exists()
        assert 0 <= t.values[0] <= 100
    assert (sweep_dir / "report" / "report.md").exists()


def test_custom_loop_recipe_minimises_a_loss(tmp_path):
    study, _ = _run("custom_template", tmp_path)
    assert study.directions == [optuna.study.StudyDirection.MINIMIZE]
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE and t.user_attrs.get("origin") != "derived"]
    assert len(done) == 2
    for t in done:
        result = json.loads((Path(t.user_attrs["trial_dir"]) / "result.json").read_text())
        assert result["maximizing"] is False
        assert result["best_val"] > 0  # a mean squared error, not an accuracy


def test_resnet_efficiency_reports_baseline_and_pareto_front(tmp_path):
    study, sweep_dir = _run("resnet_efficiency", tmp_path)
    origins = {t.number: t.user_attrs.get("origin") for t in study.trials}
    assert origins[0] == "baseline"
    baseline_run = (Path(study.trials[0].user_attrs["trial_dir"]) / "run.yaml").read_text()
    assert "name: resnet50" in baseline_run and "enabled: false" in baseline_run
    assert study.directions == [optuna.study.StudyDirection.MAXIMIZE, optuna.study.StudyDirection.MINIMIZE]
    report = json.loads((sweep_dir / "report" / "report.json").read_text())
    assert report["baseline"]["trial"] == 0 and report["baseline"]["params"] == study.trials[0].values[1]
    assert report["pareto"], "an efficiency sweep has a Pareto front"
    assert (sweep_dir / "report" / "pareto.png").exists() or any((sweep_dir / "report").glob("*pareto*.png"))
    downsized = [t for t in study.trials if t.user_attrs.get("origin") == "sampler" and t.state == optuna.trial.TrialState.COMPLETE]
    assert downsized and all(t.values[1] < study.trials[0].values[1] for t in downsized), "downsized models have fewer parameters than the resnet50 baseline"


def test_mnist1d_efficiency_recipe_runs_offline_against_its_baseline(tmp_path):
    study, sweep_dir = _run("mnist1d_efficiency", tmp_path)
    assert study.trials[0].user_attrs.get("origin") == "baseline"
    baseline_run = (Path(study.trials[0].user_attrs["trial_dir"]) / "run.yaml").read_text()
    assert "name: conv1d" in baseline_run and "name: mnist1d" in baseline_run and "enabled: false" in baseline_run
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE and t.user_attrs.get("origin") == "sampler"]
    assert done and all(t.values[1] <= study.trials[0].values[1] * 3 for t in done)
    assert all(t.user_attrs["noise"]["kind"] == "binomial" and t.user_attrs["noise"]["val_samples"] == 800 for t in done)
    assert (sweep_dir / "report" / "report.md").exists()


def test_recipe_with_missing_data_says_how_to_point_at_it(tmp_path, capsys):
    """resnet_efficiency defaults to CIFAR-10: offline it stops at once, before any folder or trial."""
    code = main(["+recipe=resnet_efficiency", f"sweep.dir={tmp_path / 'sweep'}", f"data.root={tmp_path / 'nowhere'}", "tracking=off"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "data.root" in err and "data=digits32" in err
    assert not (tmp_path / "sweep").exists()
    code = main(["run", "+recipe=resnet_efficiency", f"data.root={tmp_path / 'nowhere'}", "--dir", str(tmp_path / "one")])
    assert code == 2 and "data=digits32" in capsys.readouterr().err
    assert not (tmp_path / "one").exists()
