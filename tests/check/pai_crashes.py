"""Produce one known perforatedai 3.2.9 failure for real: `python pai_crashes.py CASE` (stdin closed).

Each case configures the library directly (as a user script would, without pai-sweep's
safety settings) so the library's own pdb traps and sys.exit calls fire.
"""

from __future__ import annotations

import sys

import torch
from torch import nn

from perforatedai import globals_perforatedai as GPA
from perforatedai import utils_perforatedai as UPA


class Tokens(nn.Module):
    """Embedding -> Linear on [B, T, F] -> mean -> Linear head on [B, C]."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(10, 8)
        self.mix = nn.Linear(8, 8)
        self.head = nn.Linear(8, 3)

    def forward(self, x):
        return self.head(self.mix(self.embed(x)).mean(dim=1))


class Normed(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(6, 8)
        self.bn = nn.BatchNorm1d(8)
        self.head = nn.Linear(8, 3)

    def forward(self, x):
        return self.head(self.bn(self.fc(x)))


class Unused(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(6, 8)
        self.spare = nn.Linear(8, 8)  # defined, never called
        self.head = nn.Linear(8, 3)

    def forward(self, x):
        return self.head(torch.relu(self.fc(x)))


def mlp() -> nn.Module:
    return nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))


def safe(testing: bool = True) -> None:
    GPA.pc.set_configuration_confirmed(True)
    GPA.pc.set_device("cpu")
    GPA.pc.set_testing_dendrite_capacity(testing)


def train(model: nn.Module, x, y, epochs: int, score=None, tracked_model=None) -> None:
    GPA.pai_tracker.set_optimizer(torch.optim.Adam)
    opt = GPA.pai_tracker.setup_optimizer(model, {"params": model.parameters(), "lr": 0.01}, {})
    opt = opt[0] if isinstance(opt, tuple) else opt
    for epoch in range(epochs):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
        value = float(epoch) if score is None else score
        model, restructured, complete = GPA.pai_tracker.add_validation_score(value, tracked_model or model)
        if complete:
            return
        if restructured:
            opt = GPA.pai_tracker.setup_optimizer(model, {"params": model.parameters(), "lr": 0.01}, {})
            opt = opt[0] if isinstance(opt, tuple) else opt


def main(case: str) -> None:
    torch.manual_seed(0)
    x, y = torch.randn(16, 6), torch.randint(0, 3, (16,))
    if case == "dims":  # the transformer preset's dims on a model whose head sees [B, C]: sys.exit(0)
        safe()
        GPA.pc.set_unwrapped_modules_confirmed(True)
        GPA.pc.set_module_names_to_perforate(["Linear"])
        GPA.pc.set_output_dimensions([-1, -1, 0])
        model = UPA.perforate_model(Tokens(), save_name="pai", maximizing_score=True)
        train(model, torch.randint(0, 10, (16, 5)), y, 3)
    elif case == "unwrapped":  # an Embedding neither perforated nor tracked, not confirmed: pdb
        safe()
        GPA.pc.set_module_names_to_perforate(["Linear"])
        GPA.pc.set_output_dimensions([-1, -1, 0])
        UPA.perforate_model(Tokens(), save_name="pai", maximizing_score=True)
    elif case == "norm":  # a BatchNorm neither perforated nor tracked: pdb
        safe()
        GPA.pc.set_module_names_to_perforate(["Linear"])
        UPA.perforate_model(Normed(), save_name="pai", maximizing_score=True)
    elif case == "knob":  # the seed's n_epochs_for_switch_history does not exist in 3.2.9: ignored with a print
        safe()
        GPA.pc.set_n_epochs_for_switch_history(3)
        GPA.pc.set_unwrapped_modules_confirmed(True)
        model = UPA.perforate_model(mlp(), save_name="pai", maximizing_score=True)
        train(model, x, y, 1)
    elif case == "dataparallel":  # the DataParallel wrapper handed to the tracker: pdb
        safe()
        GPA.pc.set_unwrapped_modules_confirmed(True)
        model = UPA.perforate_model(mlp(), save_name="pai", maximizing_score=True)
        train(model, x, y, 2, tracked_model=nn.DataParallel(model))
    elif case == "no_gradient":  # a perforated Linear never used in forward: pdb at the first switch
        safe()
        GPA.pc.set_unwrapped_modules_confirmed(True)
        model = UPA.perforate_model(Unused(), save_name="pai", maximizing_score=True)
        train(model, x, y, 3)
    elif case == "switch_mode":  # an invalid switch mode: pdb at the first validation score
        safe(testing=False)
        GPA.pc.set_unwrapped_modules_confirmed(True)
        GPA.pc.set_switch_mode(7)
        model = UPA.perforate_model(mlp(), save_name="pai", maximizing_score=True)
        train(model, x, y, 2)
    elif case == "score":  # a non-numeric score: pdb
        safe()
        GPA.pc.set_unwrapped_modules_confirmed(True)
        model = UPA.perforate_model(mlp(), save_name="pai", maximizing_score=True)
        train(model, x, y, 1, score="0.9")
    elif case == "reload":  # reloading a system into a model that was never perforated: pdb
        safe()
        GPA.pc.set_unwrapped_modules_confirmed(True)
        UPA.load_system(mlp(), "pai", "best_model")
    else:
        raise SystemExit(f"unknown case {case}")
    print("CASE FINISHED WITHOUT A TRAP")


if __name__ == "__main__":
    main(sys.argv[1])
