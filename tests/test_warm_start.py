"""A warm-forked worker behaves like a fresh process: same training, same files, killable as a group."""

from __future__ import annotations

import json
import os
import time

from omegaconf import OmegaConf

from pai_sweep.compose import compose
from pai_sweep.launchers.warm import spawn_warm
from pai_sweep.schema import RUN_GROUPS
from pai_sweep.trial_files import read_metrics, read_result
from pai_sweep.worker import spawn_worker

SHRUNK = ["model=mlp", "model.hidden=[8]", "dendrites=linear_only", "dendrites.switch_mode=every_time",
          "dendrites.max_dendrites=1", "train.max_epochs=3", "data.limit=200"]
ENV = {"OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}


def _trial(path, overrides):
    cfg = compose(overrides)
    path.mkdir(parents=True)
    run = {g: OmegaConf.to_container(cfg[g], resolve=True) for g in RUN_GROUPS}
    (path / "run.yaml").write_text(OmegaConf.to_yaml(OmegaConf.create(run)))
    return path


def test_warm_fork_trains_exactly_like_a_fresh_process(tmp_path):
    cold, warm = _trial(tmp_path / "cold", SHRUNK), _trial(tmp_path / "warm", SHRUNK)
    procs = [spawn_worker(cold, env=ENV), spawn_warm(warm, env=ENV)]
    assert [p.wait(timeout=300) for p in procs] == [0, 0]
    a, b = read_metrics(cold), read_metrics(warm)
    assert [(r.val, r.params, r.dendrites) for r in a] == [(r.val, r.params, r.dendrites) for r in b]
    assert max(r.dendrites for r in b) == 1, "the library started from its defaults and added the dendrite"
    assert read_result(warm).status == "complete"
    assert sorted(p.name for p in (cold / "pai").glob("*.csv")) == sorted(p.name for p in (warm / "pai").glob("*.csv"))
    cold_cfg = json.loads((cold / "pai" / "pai_config.json").read_text())
    warm_cfg = json.loads((warm / "pai" / "pai_config.json").read_text())
    assert cold_cfg == warm_cfg, "no setting leaked in from the server process"
    assert "Adding validation score" in (warm / "worker.log").read_text(), "the library's output goes to worker.log"


def test_warm_fork_leads_its_own_group_and_dies_with_it(tmp_path):
    trial = _trial(tmp_path / "t", [*SHRUNK, "train.max_epochs=200", "dendrites.switch_mode=no_switch"])
    proc = spawn_warm(trial, env=ENV)
    assert os.getpgid(proc.pid) == proc.pid
    assert os.readlink(f"/proc/{proc.pid}/cwd") == str(trial.resolve()), "reattach finds it by its folder"
    deadline = time.monotonic() + 120
    while not (trial / "metrics.jsonl").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    os.killpg(proc.pid, 9)
    assert proc.wait(timeout=30) == -9
    assert read_result(trial) is None, "killed from outside: no completion record, the driver records the failure"
