"""A real single-node SLURM cluster for these tests (scripts/slurm_cluster.sh), and shrunk trial folders."""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path
from typing import Callable

import pytest
from omegaconf import OmegaConf

from pai_sweep.compose import compose
from pai_sweep.schema import RUN_GROUPS

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "slurm_cluster.sh"
# A trial that trains for real in seconds: tiny MLP on a slice of digits, a few epochs.
TRIAL_OVERRIDES = ["model=mlp", "model.hidden=[16]", "dendrites=linear_only", "dendrites.n_epochs_to_switch=1",
                   "data.limit=300", "train.device=cpu"]


@pytest.fixture(scope="session")
def slurm_cluster() -> str:
    """Starts the cluster unless it runs (CI starts it first); stops it at the end only if started here."""
    was_up = subprocess.run([str(SCRIPT), "status"], capture_output=True, text=True, timeout=60).returncode == 0
    out = subprocess.run([str(SCRIPT), "start"], capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, f"scripts/slurm_cluster.sh start failed:\n{out.stderr[-3000:]}"
    conf = out.stdout.strip().splitlines()[-1].split("=", 1)[1]
    previous = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = conf
    yield conf
    if previous is None:
        os.environ.pop("SLURM_CONF", None)
    else:
        os.environ["SLURM_CONF"] = previous
    if not was_up:
        subprocess.run([str(SCRIPT), "stop"], capture_output=True, timeout=120)


@pytest.fixture(scope="session")
def trial_yaml() -> str:
    cfg = compose(TRIAL_OVERRIDES)
    return OmegaConf.to_yaml(OmegaConf.create({g: OmegaConf.to_container(cfg[g], resolve=True) for g in RUN_GROUPS}))


@pytest.fixture
def make_trial(tmp_path, trial_yaml) -> Callable[[int, int], Path]:
    """make_trial(number, epochs) -> <sweep dir>/trials/<number> holding run.yaml."""
    sweep_name = f"sw-{uuid.uuid4().hex[:8]}"  # job names are pai-<sweep dir name>-<n>: unique per test

    def make(number: int, epochs: int = 3) -> Path:
        trial_dir = tmp_path / sweep_name / "trials" / str(number)
        trial_dir.mkdir(parents=True)
        text = trial_yaml.replace("max_epochs: 60", f"max_epochs: {epochs}")
        assert f"max_epochs: {epochs}" in text
        (trial_dir / "run.yaml").write_text(text)
        return trial_dir

    return make
