"""A trial whose built model does not match what the study records fails with the reason (issue #19).

The driver, launcher and sqlite study are real; the worker is a stand-in process that writes the
`built` record the way a broken worker would (the old bug: the downsized model never built).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from pai_sweep.compose import compose
from pai_sweep.driver import run_sweep
from pai_sweep.launchers.local import LocalLauncher
from pai_sweep.search_space import apply_params
from pai_sweep.sweep.verify import built_mismatch, same
from pai_sweep.trial_files import TrialResult

# Writes result.json from run.yaml; BUILD says what it gets wrong: "ignore_downsize" builds the
# model as configured whatever downsize says, "knob" configures max_dendrites one higher.
FAKE = r"""
import json, os, yaml
run = yaml.safe_load(open("run.yaml"))
bug = os.environ.get("BUILD", "")
d = run["dendrites"]
width = run["model"]["width_mult"] * (1.0 if bug == "ignore_downsize" or run["downsize"]["name"] == "none" else run["downsize"]["width_mult"])
knobs = {k: d[k] for k in ("max_dendrites", "improvement_threshold", "switch_mode", "candidate_weight_initialization_multiplier")}
if bug == "knob":
    knobs["max_dendrites"] += 1
built = {"model": {"name": run["model"]["name"], "width_mult": width, "hidden": run["model"]["hidden"]},
         "params": int(1000 * width), "original_params": 1000, "perforated": {".head": "Linear"}, "knobs": knobs}
json.dump({"status": "complete", "reason": "epoch_cap", "best_val": 90.0, "best_test": 90.0, "params": int(1000 * width),
           "base_params": int(1000 * width), "dendrites": 0, "epochs": 1, "maximizing": True, "built": built}, open("result.json", "w"))
"""


def fake_spawn(trial_dir, env=None, log_path=None):
    with open(log_path, "ab") as log:
        return subprocess.Popen([sys.executable, "-c", FAKE], cwd=trial_dir, env=env, stdin=subprocess.DEVNULL,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def sweep(tmp_path: Path, monkeypatch, bug: str) -> list[optuna.trial.FrozenTrial]:
    monkeypatch.setenv("BUILD", bug)
    cfg = compose(["model=mlp", "dendrites=linear_only", "downsize=width", "tracking=off", "launcher.poll_interval=0.05",
                   "sweep.n_trials=2", "sweep.in_flight=1", "sweep.check_first=false", "sweep.sampler=grid", "sweep.rule_trials=false"])
    cfg = apply_params(cfg, {"sweep.dir": str(tmp_path / "sweep"),
                             "sweep.space": {"downsize.width_mult": {"type": "categorical", "choices": [0.25, 1.0]}}})
    run_sweep(cfg, launcher=LocalLauncher(cfg.launcher, Path(cfg.sweep.dir), 1, spawn=fake_spawn))
    storage = f"sqlite:///{tmp_path / 'sweep' / 'study.db'}"
    return sorted(optuna.load_study(study_name=cfg.sweep.name, storage=storage).get_trials(), key=lambda t: t.params["downsize.width_mult"])


def test_a_trial_that_built_another_model_fails_with_the_reason(tmp_path, monkeypatch):
    narrow, full = sweep(tmp_path, monkeypatch, "ignore_downsize")
    assert narrow.state == TrialState.FAIL and narrow.values is None
    assert narrow.user_attrs["reason"] == (
        "the trial did not build what the study records: model.width_mult recorded 0.25 (model.width_mult x downsize.width_mult), built 1.0"
    )
    assert full.state == TrialState.COMPLETE  # width 1.0: what it built is what it records


def test_a_trial_configured_with_other_knobs_fails_with_the_reason(tmp_path, monkeypatch):
    for t in sweep(tmp_path, monkeypatch, "knob"):
        assert t.state == TrialState.FAIL
        assert "dendrites.max_dendrites recorded 3, PerforatedAI was configured with 4" in t.user_attrs["reason"]


def test_a_trial_that_built_what_it_records_completes(tmp_path, monkeypatch):
    assert [t.state for t in sweep(tmp_path, monkeypatch, "")] == [TrialState.COMPLETE, TrialState.COMPLETE]


def write_run(folder: Path, **dendrites) -> Path:
    import yaml

    folder.mkdir(parents=True, exist_ok=True)
    run = {"model": {"name": "mlp", "width_mult": 1.0}, "downsize": {"name": "none"},
           "dendrites": {"enabled": True, "preset": "linear_only", "max_dendrites": 2, "module_names_to_perforate": ["Linear"],
                         "module_ids_to_perforate": [], "improvement_threshold": [0.001, 0.0], **dendrites}}
    (folder / "run.yaml").write_text(yaml.safe_dump(run))
    return folder


def result(dendrites: int = 1, **built) -> TrialResult:
    record = {"model": {"name": "mlp", "width_mult": 1.0}, "perforated": {".head": "Linear"},
              "knobs": {"max_dendrites": 2, "improvement_threshold": [0.001, 0.0]}, **built}
    return TrialResult(status="complete", reason="pai_complete", dendrites=dendrites, built=record)


@pytest.mark.parametrize(
    "run, res, words",
    [
        ({}, result(), None),
        ({}, result(knobs={"max_dendrites": 2, "improvement_threshold": [0.0010000001, 0.0]}), None),  # float tolerance
        ({}, result(knobs={"max_dendrites": 2, "improvement_threshold": 0.001}), "dendrites.improvement_threshold recorded [0.001, 0.0]"),
        ({}, result(dendrites=3), "dendrites.max_dendrites recorded 2, the run grew 3 dendrites"),
        ({}, result(perforated={".body.0": "Conv2d"}), "built perforating .body.0 (Conv2d)"),
        ({}, result(perforated={}), "dendrites.enabled recorded true, built with no perforated module"),
        ({"enabled": False}, result(perforated={".head": "Linear"}, knobs={}), "dendrites.enabled recorded false"),
        ({"preset": "auto"}, result(perforated={".body.0": "Conv2d"}), None),  # auto chooses the modules itself
    ],
)
def test_built_mismatch_names_the_key_the_recorded_and_the_built_value(tmp_path, run, res, words):
    reason = built_mismatch(write_run(tmp_path / "t", **run), res)
    if words is None:
        assert reason is None
    else:
        assert words in reason and reason.startswith("the trial did not build what the study records: ") and "\n" not in reason


def test_a_result_without_a_built_record_is_not_judged(tmp_path):
    assert built_mismatch(write_run(tmp_path / "t"), TrialResult(status="complete", reason="epoch_cap")) is None
    assert same(0.1 + 0.2, 0.3) and not same(True, 1) and not same([1, 2], [1]) and same(None, None)
