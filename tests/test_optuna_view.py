"""The study as Optuna's own tools read it (optuna-dashboard, the optuna CLI): a tiny real sweep, read back.

Metric names instead of "Objective 0", one intermediate value per trained epoch (multi-objective too),
the config and the baseline as study user attrs, one type per categorical, origin on every trial.
"""

from __future__ import annotations

import json
from pathlib import Path

import optuna
from optuna.distributions import CategoricalDistribution
from optuna.trial import TrialState

from pai_sweep.cli import main

TINY = ["model=mlp", "model.hidden=[8]", "dendrites=linear_only", "data.limit=150", "train.max_epochs=3",
        "train.test_saves=false", "sweep.n_trials=2", "sweep.check_first=false", "tracking=off"]


def test_study_reads_well_in_optuna_tools(tmp_path, capsys):
    sweep_dir = tmp_path / "sweep"
    space = ("sweep.space={dendrites.n_epochs_to_switch:{type:int,low:1,high:2},"
             "dendrites.improvement_threshold:{type:categorical,choices:[[0.01,0.001,0.0],0.0]}}")
    code = main([*TINY, "objective=efficiency", space, f"sweep.dir={sweep_dir}"])
    out = capsys.readouterr()
    assert code == 0, out.out + out.err
    study = optuna.load_study(study_name="default", storage=f"sqlite:///{sweep_dir / 'study.db'}")

    assert study.metric_names == ["val accuracy", "parameters"]
    config = study.user_attrs["config"]
    assert config["objective"] == "efficiency" and config["model"] == "mlp" and "dendrites.improvement_threshold" in config["searched"]
    baseline = study.user_attrs["baseline"]
    base_trial = next(t for t in study.trials if t.user_attrs["origin"] == "baseline")
    assert baseline["trial"] == base_trial.number and baseline["score"] == base_trial.user_attrs["score"]

    trained = [t for t in study.trials if t.state == TrialState.COMPLETE and t.user_attrs["origin"] != "derived"]
    assert len(trained) == 3  # the baseline and the two sampler trials
    for t in trained:
        lines = [json.loads(ln) for ln in (Path(t.user_attrs["trial_dir"]) / "metrics.jsonl").read_text().splitlines()]
        assert t.intermediate_values == {rec["epoch"]: rec["val"] for rec in lines} and len(lines) >= 2, t.number
    for t in study.trials:
        assert isinstance(t.user_attrs.get("origin"), str) and t.user_attrs["origin"], t.number
        for dist in t.distributions.values():
            if isinstance(dist, CategoricalDistribution):
                assert len({type(c) for c in dist.choices}) == 1, dist.choices  # never a float beside JSON strings
    thresholds = {t.params["dendrites.improvement_threshold"] for t in study.trials if "dendrites.improvement_threshold" in t.params}
    assert thresholds <= {"[0.01, 0.001, 0.0]", "0.0"} and thresholds
