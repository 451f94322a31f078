"""A warm-forked worker behaves like a fresh process: same training, same files, killable as a group."""

from __future__ import annotations

import json
import os
import time

import pytest

from omegaconf import OmegaConf

from pai_sweep.compose import compose
from pai_sweep.launchers.warm import spawn_warm
from pai_sweep.schema import RUN_GROUPS
from pai_sweep.trial_files import read_metrics, read_result
from pai_sweep.spawn import spawn_worker

SHRUNK = ["model=mlp", "model.hidden=[8]", "dendrites=linear_only", "dendrites.switch_mode=every_time",
          "dendrites.max_dendrites=1", "train.max_epochs=3", "data.limit=200"]
ENV = {"OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}


def _trial(path, overrides):
    cfg = compose(overrides)
    path.mkdir(parents=True)
    run = {g: OmegaConf.to_container(cfg[g], resolve=True) for g in RUN_GROUPS}
    (path / "run.yaml").write_text(OmegaConf.to_yaml(OmegaConf.create(run)))
    return path


@pytest.fixture(params=["per_command", "kept"])
def server(request):
    """Each test below runs against multiprocessing's forkserver (dies with the command) and the kept server
    (launcher.keep_warm, tests/test_warm_server.py)."""
    if request.param == "kept":
        request.getfixturevalue("kept")
    return request.param


def test_warm_fork_trains_exactly_like_a_fresh_process(tmp_path, server):
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


def test_warm_fork_leads_its_own_group_and_dies_with_it(tmp_path, server):
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


def _answer(x):
    import torch

    return {"cwd": os.getcwd(), "env": os.environ.get("PAI_SWEEP_TEST_MARK"), "sum": int(torch.tensor([x, 2]).sum())}


def _raise(message):
    raise ValueError(message)


def _die():
    os._exit(7)


def test_call_warm_runs_in_a_fork_with_the_callers_folder_and_environment(tmp_path, monkeypatch, server):
    from pai_sweep.launchers.warm import call_warm

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PAI_SWEEP_TEST_MARK", "seen")
    assert call_warm(_answer, 40) == {"cwd": str(tmp_path), "env": "seen", "sum": 42}
    with pytest.raises(ValueError, match="from the child"):
        call_warm(_raise, "from the child")
    with pytest.raises(RuntimeError, match="exit code 7"):
        call_warm(_die)


def test_preload_plan_leaves_torchvision_out_only_when_nothing_can_use_it(monkeypatch):
    from pai_sweep.launchers import warm

    def plan(*overrides):
        monkeypatch.setattr(warm, "_context", None)  # as before the server boots
        monkeypatch.setattr(warm, "_vision", True)
        warm.plan_preload(compose(list(overrides)))
        return warm._vision

    assert plan() is False  # the default: small CNN on digits
    assert plan("model=mlp", "data=mnist1d") is False
    assert plan("model=resnet18") is True
    assert plan("data=cifar10") is True
    assert plan("model=custom", "model._target_=torch.nn.Identity") is True  # user code may import it
    assert plan("sweep=empty", "+sweep.space={model.name:{type:categorical,choices:[mlp,resnet18]}}") is True
    monkeypatch.setattr(warm, "_context", object())  # the server runs: its imports are fixed
    monkeypatch.setattr(warm, "_vision", True)
    warm.plan_preload(compose([]))
    assert warm._vision is True
