"""`pai-sweep run`: the real console entry point, one real trial, progress and result printed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).parent


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run(
        [sys.executable, "-m", "pai_sweep", "run", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=240
    )


def test_run_prints_progress_and_result(tmp_path):
    proc = _run(["model=mlp", "model.hidden=[8]", "dendrites=linear_only", "train.max_epochs=3", "train.test_saves=false"], tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert sum(line.startswith("epoch ") for line in lines) == 3
    assert lines[-1].startswith("result: complete (epoch_cap)") and "dendrites 0" in lines[-1]
    (trial,) = (tmp_path / "runs").iterdir()
    assert (trial / "result.json").exists() and (trial / "run.yaml").exists() and (trial / "pai").is_dir()


def test_run_exits_1_with_the_reason_when_the_trial_fails(tmp_path):
    proc = _run(["model=custom", "model._target_=test_traps.NaNInTraining", "dendrites=linear_only", "--dir", "mine"], tmp_path)
    assert proc.returncode == 1
    assert proc.stdout.splitlines()[-1].startswith("result: failed (training loss is nan at epoch 0")
    assert (tmp_path / "mine" / "result.json").exists()


def test_run_refuses_an_unknown_knob_before_starting(tmp_path):
    proc = _run(["+dendrites.extra.n_epochs_for_switch_history=3"], tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "pai-sweep: error: dendrites.extra.n_epochs_for_switch_history is not a PerforatedAI setting "
        "(did you mean n_epochs_to_switch?); perforatedai silently ignores unknown names, so fix or remove it"
    ]
    assert not (tmp_path / "runs").exists()


def test_run_trains_conv1d_on_mnist1d_with_dendrites(tmp_path, xdg_cache):
    proc = _run(["data=mnist1d", "model=conv1d", "dendrites=conv1d", "data.limit=200", "train.max_epochs=2",
                 "dendrites.switch_mode=every_time", "train.test_saves=false", "--dir", "m1d"], tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads((tmp_path / "m1d" / "result.json").read_text())
    assert result["status"] == "complete" and result["epochs"] == 2 and result["base_params"] == 2442
    assert result["extra"]["perforated"] == 4  # three Conv1d and the head
    assert result["dendrites"] >= 1 and result["params"] > result["base_params"]  # a dendrite was really added
    assert list(xdg_cache.glob("mnist1d-*.npz"))  # generated into XDG_CACHE_HOME, not elsewhere
