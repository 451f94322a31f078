"""Task consistency (loss vs task, a loss that would broadcast), the score named in the header, and the
shipped regression template: it reshapes its predictions to the target and learns."""

from __future__ import annotations

import json
import subprocess
import sys
from types import SimpleNamespace

import pytest
import torch
from torch.utils.data import DataLoader, Subset, TensorDataset

from pai_sweep.check.verdict import direction_problems
from pai_sweep.compose import compose
from pai_sweep.errors import ConfigError
from pai_sweep.examples import regression
from pai_sweep.objective import directions
from pai_sweep.task import config_task, loss_problems, objective_label
from pai_sweep.train_loop import loss_function


def test_loss_against_task():
    assert loss_problems({"loss": "cross_entropy"}, "regression") == [
        "the data is a regression task (numeric targets) but train.loss=cross_entropy is a classification loss: "
        "set train.loss=mse (and dendrites.maximizing_score=false)"
    ]
    assert "set train.loss=cross_entropy" in loss_problems({"loss": "mse"}, "classification")[0]
    assert loss_problems({"loss": "mse"}, "regression") == [] == loss_problems({"loss": "cross_entropy"}, "classification")
    assert loss_problems({"loss": "cross_entropy", "train_fn": "mypkg.train"}, "regression") == []  # its own loss
    # `pai-sweep check` (and so sweep.check_first) reports it with the direction problems
    found = direction_problems({"maximizing_score": False}, {"loss": "cross_entropy", "scheduler": {}}, "regression")
    assert found and "set train.loss=mse" in found[0]


def test_mse_refuses_shapes_that_would_broadcast():
    mse = loss_function("mse", "regression")
    assert float(mse(torch.ones(4, 1), torch.zeros(4))) == 1.0  # [B, 1] against [B]: reshaped, one value per target
    with pytest.raises(ConfigError, match=r"train.loss=mse: the model gives \(4, 2\) for targets of shape \(4, 1\)"):
        mse(torch.ones(4, 2), torch.zeros(4, 1))


@pytest.mark.parametrize(
    "overrides, label",
    [
        ([], "val accuracy (%) (maximize) [objective=accuracy]"),
        (["+recipe=custom_template", "train.train_fn=null"], "val mse (minimize) [objective=accuracy]"),
        (["+recipe=custom_template"], "val score from train.train_fn (minimize) [objective=accuracy]"),
        (["objective=efficiency", "objective.metric=test"], "test accuracy (%) (maximize), parameters (minimize) [objective=efficiency]"),
    ],
)
def test_the_header_names_the_score(overrides, label):
    cfg = compose(overrides)
    assert objective_label(cfg, directions(cfg.objective, cfg.dendrites.maximizing_score)) == label


def _run(tmp_path, *overrides):
    proc = subprocess.run([sys.executable, "-m", "pai_sweep", "run", "+recipe=custom_template", *overrides, "--dir", str(tmp_path)],
                          capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    return proc, json.loads((tmp_path / "result.json").read_text())


def test_regression_with_a_classification_loss_stops_before_training(tmp_path):
    proc, result = _run(tmp_path, "train.train_fn=null", "train.loss=cross_entropy")
    assert proc.returncode == 1 and "Traceback" not in proc.stdout + proc.stderr
    assert result["status"] == "failed" and "set train.loss=mse" in result["reason"] and "\n" not in result["reason"]
    assert not (tmp_path / "metrics.jsonl").exists()  # not one epoch trained


class _Session:
    """What the template's train_fn uses of PAISession, without PerforatedAI: a fixed number of epochs."""

    def __init__(self, model, epochs):
        self.model, self.device, self.epochs, self.vals = model, "cpu", epochs, []

    def optimizer(self):
        return torch.optim.Adam(self.model.parameters(), lr=0.005)

    def report(self, val, **_):
        self.vals.append(val)
        return self.model, False, len(self.vals) >= self.epochs


@pytest.mark.parametrize("flat_targets", [False, True])
def test_regression_template_learns(flat_targets):
    full, _, _ = regression.make_datasets()
    x, y = full.tensors
    if flat_targets:  # the common [B] target: mse_loss([B, 1], [B]) used to broadcast to [B, B] and learn only the mean
        y = y.squeeze(1)
    ds = TensorDataset(x, y)
    order = torch.randperm(len(ds), generator=torch.Generator().manual_seed(0)).tolist()
    val_idx, train_idx = order[:88], order[88:]
    data = SimpleNamespace(train=DataLoader(Subset(ds, train_idx), batch_size=32, shuffle=True),
                           val=DataLoader(Subset(ds, val_idx), batch_size=64), test=DataLoader(Subset(ds, val_idx), batch_size=64))
    torch.manual_seed(0)
    session = _Session(regression.RegressionMLP((10,), 1, hidden=16), epochs=40)
    regression.train_fn(session, data)
    variance = float(y[val_idx].var(unbiased=False))
    assert session.vals[-1] < 0.7 * variance, (session.vals[-1], variance)


def test_regression_template_learns_in_a_real_run(tmp_path):
    proc, result = _run(tmp_path, "train.max_epochs=25", "dendrites.max_dendrites=0")
    assert proc.returncode == 0, proc.stdout[-2000:]
    from pai_sweep.data import load_data

    data = load_data(compose(["+recipe=custom_template"]).data, batch_size=64, seed=0)
    ys = torch.cat([y.reshape(-1) for _, y in data.val])
    assert result["best_val"] < 0.7 * float(ys.var(unbiased=False)), (result["best_val"], float(ys.var(unbiased=False)))


def test_a_loss_must_be_minimised():
    regression_data = ["+recipe=custom_template", "train.train_fn=null"]
    with pytest.raises(ConfigError) as err:
        compose([*regression_data, "dendrites.maximizing_score=true", "train.scheduler.args.mode=max"])
    assert str(err.value) == ("train.loss=mse makes the score the validation mse (lower is better) but dendrites.maximizing_score=true: "
                              "set dendrites.maximizing_score=false train.scheduler.args.mode=min")
    compose([*regression_data, "dendrites.maximizing_score=false", "train.scheduler.args.mode=min"])


@pytest.mark.parametrize("data", ["digits", "mnist1d", "cifar10", "image_folder"])
def test_a_regression_loss_on_a_built_in_data_set_stops_at_compose(data, tmp_path, capsys):
    # every built-in data set is classification: the config alone decides it, so nothing is made or loaded
    line = "the data is a classification task (class labels) but train.loss=mse is a regression loss: set train.loss=cross_entropy"
    extra = [f"data.root={tmp_path / 'none'}"] if data == "image_folder" else []
    for fixes_direction in ([], ["dendrites.maximizing_score=false", "train.scheduler.args.mode=min"]):
        with pytest.raises(ConfigError) as err:
            compose([f"data={data}", *extra, "train.loss=mse", *fixes_direction])
        assert str(err.value) == line  # the loss's fix first, not the direction's (which would keep mse)
    from pai_sweep.cli import main

    assert main([f"data={data}", *extra, "train.loss=mse", f"sweep.dir={tmp_path / 's'}", "tracking=off"]) == 2
    assert capsys.readouterr().err == f"pai-sweep: error: {line}\n"
    assert not (tmp_path / "s").exists()


def test_custom_data_decides_its_task_when_loaded():
    # data=custom declares its task on the dataset: compose cannot know it; the check and the worker do
    cfg = compose(["+recipe=custom_template", "train.train_fn=null", "train.loss=cross_entropy", "dendrites.maximizing_score=false",
                   "train.scheduler.args.mode=min"])
    assert config_task(cfg.data) is None and config_task(compose([]).data) == "classification"
