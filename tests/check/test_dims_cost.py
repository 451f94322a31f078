"""dims inference and the parameter formula on hand-built models (no data, no library)."""

from __future__ import annotations

import torch
from torch import nn

from pai_sweep.check.cost import PerforatedSize, params_with, projection
from pai_sweep.check.inspect import MISMATCH, OK, UNUSED, WRONG_AXIS, check_dims, infer_dims, inspect_model, library_accepts


class Tokens(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.mix = nn.Linear(6, 6)
        self.spare = nn.Linear(6, 6)
        self.norm = nn.LayerNorm(6)
        self.head = nn.Linear(6, 3)

    def forward(self, x):
        return self.head(self.norm(self.mix(x)).mean(1))


def statuses(overrides: dict) -> dict:
    model = Tokens()
    cfg = {"module_names_to_perforate": ["Linear"], "output_dimensions": [-1, -1, 0], "output_dimension_overrides": overrides}
    found = inspect_model(model, cfg)
    report = check_dims(model, found.perforated, cfg, torch.randn(4, 5, 6))
    return {m.path: (m.status, m.inferred) for m in report.modules}, found


def test_statuses_and_inferred_dims():
    got, found = statuses({"head": [-1, 0]})
    assert got == {".mix": (OK, [-1, -1, 0]), ".head": (OK, [-1, 0]), ".spare": (UNUSED, None)}
    assert [m.path for m in found.unwrapped_modules] == [".norm"] and found.unwrapped_params == [".norm.weight", ".norm.bias"]
    got, _ = statuses({})
    assert got[".head"] == (MISMATCH, [-1, 0])
    got, _ = statuses({"head": [-1, 0], "mix": [-1, 0, -1]})  # the 0 on the token axis (size 5, not 6)
    assert got[".mix"] == (WRONG_AXIS, [-1, -1, 0])


def test_infer_and_accept():
    assert infer_dims([8, 16, 4, 4], 16, True) == [-1, 0, -1, -1]
    assert infer_dims([8, 7, 16], 16, False) == [-1, -1, 0]
    assert infer_dims([8, 16, 16], 16, False) == [-1, -1, 0]  # ambiguous: features last for Linear
    assert library_accepts([-1, 0], [8, 10]) and not library_accepts([-1, -1, 0], [8, 10])
    assert not library_accepts([-1, -1], [8, 10])  # no neuron axis


def test_formula_reproduces_the_reference_mlp():
    # reference/perforatedai.md: a 64-8-10 MLP has 610 / 1,238 / 1,920 / 2,638 parameters at 0..3 dendrites
    mods = [PerforatedSize(".0", 520, 8), PerforatedSize(".2", 90, 10)]
    assert [params_with(610, mods, d) for d in range(4)] == [610, 1238, 1920, 2638]
    assert [r["params"] for r in projection(610, mods, 3)] == [610, 1238, 1920, 2638]
