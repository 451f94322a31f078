"""Each PerforatedAI trap becomes a failed result.json with a one-line reason, never a hang.

The trials run as real workers (real PerforatedAI, digits) side by side; the models below are
imported by the workers as `test_traps.<Name>` (run_trials puts tests/ on PYTHONPATH).
"""

from __future__ import annotations

import pdb

import pytest
import torch
from torch import nn

from pai_sweep.trial_files import read_metrics, read_result


class BatchNormNet(nn.Module):
    """Conv -> BatchNorm -> head, plus a loose scalar parameter: both outside any perforated module."""

    def __init__(self, input_shape, num_classes):
        super().__init__()
        self.conv = nn.Conv2d(input_shape[0], 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.scale = nn.Parameter(torch.ones(1))
        self.head = nn.Linear(4, num_classes)

    def forward(self, x):
        return self.head(torch.relu(self.bn(self.conv(x))).mean((2, 3))) * self.scale


class ModuleAttribute(nn.Module):
    """An attribute named `module`, as a DataParallel wrapper has: the library stops in pdb on it."""

    def __init__(self, input_shape, num_classes):
        super().__init__()
        self.module = nn.Sequential(nn.Flatten(), nn.Linear(64, num_classes))

    def forward(self, x):
        return self.module(x)


class RankChangesInTraining(nn.Module):
    """The head's output is [B, 10] in eval() but [B, 1, 10] in train(): only training hits the library's sys.exit(0)."""

    def __init__(self, input_shape, num_classes):
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU())
        self.head = nn.Linear(16, num_classes)

    def forward(self, x):
        h = self.body(x)
        if self.training:
            return self.head(h.unsqueeze(1)).squeeze(1)
        return self.head(h)


class NaNInTraining(nn.Module):
    def __init__(self, input_shape, num_classes):
        super().__init__()
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(64, num_classes))

    def forward(self, x):
        out = self.head(x)
        return out * float("nan") if self.training else out


class UnusedLayer(nn.Module):
    """A perforated Linear the forward pass never uses: the library fails when it adds dendrites."""

    def __init__(self, input_shape, num_classes):
        super().__init__()
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(64, num_classes))
        self.unused = nn.Linear(3, 3)

    def forward(self, x):
        return self.head(x)


def pdb_train_fn(session, data):
    """A training function that stops in pdb, as the library does in ~35 places."""
    pdb.set_trace()
    session.report(0.0)


QUICK = {"max_epochs": 2, "graphs": "end", "test_saves": False}
MLP = {"name": "mlp", "hidden": [8]}
LINEAR = {"module_names_to_perforate": ["Linear"], "output_dimensions": [-1, 0]}

RUNS = {
    "batchnorm": {"model": {"name": "custom", "_target_": "test_traps.BatchNormNet"},
                  "dendrites": {"switch_mode": "every_time", "max_dendrites": 1}, "train": QUICK},
    "unknown_knob": {"model": MLP, "dendrites": {**LINEAR, "extra": {"n_epochs_for_switch_history": 3}}, "train": QUICK},
    "module_attr": {"model": {"name": "custom", "_target_": "test_traps.ModuleAttribute"}, "dendrites": LINEAR, "train": QUICK},
    "dims_precheck": {"model": {"name": "transformer", "d_model": 8, "n_layers": 1},
                      "dendrites": {"module_names_to_perforate": ["Linear"], "output_dimensions": [-1, -1, 0]}, "train": QUICK},
    "exit_zero": {"model": {"name": "custom", "_target_": "test_traps.RankChangesInTraining"}, "dendrites": LINEAR, "train": QUICK},
    "pdb": {"model": MLP, "dendrites": LINEAR, "train": {**QUICK, "train_fn": "test_traps.pdb_train_fn"}},
    "nan": {"model": {"name": "custom", "_target_": "test_traps.NaNInTraining"}, "dendrites": LINEAR, "train": QUICK},
    "unused": {"model": {"name": "custom", "_target_": "test_traps.UnusedLayer"},
               "dendrites": {**LINEAR, "switch_mode": "every_time", "max_dendrites": 1}, "train": QUICK},
}


@pytest.fixture(scope="module")
def trials(tmp_path_factory, run_trials):
    return run_trials(tmp_path_factory.mktemp("traps"), RUNS, timeout=240)


def _failed(trials, name: str) -> str:
    result = read_result(trials[name])
    assert result is not None, f"{name}: no result.json"
    assert result.status == "failed", f"{name}: {result.status} {result.reason}"
    assert "\n" not in result.reason and result.reason
    return result.reason


def test_batchnorm_is_tracked_and_trains(trials):
    result = read_result(trials["batchnorm"])
    assert result.status == "complete", result.reason
    assert "BatchNorm2d" in result.extra["auto_tracked"] and ".scale" in result.extra["auto_tracked"]
    assert len(read_metrics(trials["batchnorm"])) == result.epochs >= 1
    assert "tracking BatchNorm2d layers" in (trials["batchnorm"] / "worker.log").read_text()


def test_unknown_knob_fails_before_training(trials):
    reason = _failed(trials, "unknown_knob")
    assert "dendrites.extra.n_epochs_for_switch_history" in reason and "n_epochs_to_switch" in reason
    assert not (trials["unknown_knob"] / "pai").exists()


def test_module_attribute_is_refused(trials):
    reason = _failed(trials, "module_attr")
    assert "'module'" in reason and "rename" in reason


def test_output_dimensions_mismatch_is_caught_before_perforating(trials):
    reason = _failed(trials, "dims_precheck")
    assert "does not fit module head" in reason and "output_dimension_overrides={head: [-1, 0]}" in reason


def test_library_exit_zero_becomes_a_failure(trials):
    reason = _failed(trials, "exit_zero")
    assert "exited with code 0" in reason and "module head expects output dimensions [-1, 0]" in reason
    assert "[64, 1, 10] (3-D)" in reason and "output_dimension_overrides.head" in reason
    assert "has not properly set this_output_dimensions" in (trials["exit_zero"] / "worker.log").read_text()


def test_pdb_trap_ends_instead_of_hanging(trials):
    reason = _failed(trials, "pdb")
    assert "pdb.set_trace() was reached" in reason and "pdb_train_fn" in reason


def test_nan_loss_is_a_failure(trials):
    reason = _failed(trials, "nan")
    assert "nan" in reason.lower() and "lr" in reason


def test_library_crash_gets_the_known_explanation_and_fix(trials):
    """A crash inside the library is explained from its signature in worker.log (pai_sweep.check.diagnose)."""
    reason = _failed(trials, "unused")
    assert " -- " in reason and "Fix:" in reason, reason
