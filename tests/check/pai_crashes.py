"""Produce known perforatedai 3.2.9 failures for real.

    python pai_crashes.py CASE          # one case in this process (stdin closed by the caller)
    python pai_crashes.py all OUT_DIR   # every case, each in a child forked after the imports:
                                        # OUT_DIR/<case>.log and OUT_DIR/codes.json (exit codes)

Each case configures the library directly (as a user script would, without pai-sweep's
safety settings) so the library's own pdb traps and sys.exit calls fire.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from pathlib import Path

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
    elif case == "knob":  # the setup guide's n_epochs_for_switch_history does not exist in 3.2.9: ignored with a print
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
    elif case == "reload":  # reloading a saved system into a model that was never perforated: pdb
        safe()
        GPA.pc.set_unwrapped_modules_confirmed(True)
        model = UPA.perforate_model(mlp(), save_name="pai", maximizing_score=True)
        train(model, x, y, 1)  # writes pai/best_model.pt
        UPA.load_system(mlp(), "pai", "best_model")
    else:
        raise SystemExit(f"unknown case {case}")
    print("CASE FINISHED WITHOUT A TRAP")


CASES = ("dims", "unwrapped", "norm", "knob", "dataparallel", "no_gradient", "switch_mode", "score", "reload")


def run_forked(case: str, out_dir: Path) -> int:
    """The case in a forked child (fresh library state, imports shared): its exit code, its output in a log."""
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            work = out_dir / case
            work.mkdir(parents=True, exist_ok=True)
            os.chdir(work)
            log = os.open(out_dir / f"{case}.log", os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
            os.dup2(log, 1)
            os.dup2(log, 2)
            null = os.open(os.devnull, os.O_RDONLY)
            os.dup2(null, 0)  # no terminal: pdb reads EOF and raises BdbQuit
            sys.stdin = open(os.devnull)
            main(case)
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except BaseException:  # noqa: BLE001 - BdbQuit included, as a real process would report it
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code & 0xFF)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


if __name__ == "__main__":
    if sys.argv[1] == "all":
        out = Path(sys.argv[2])
        out.mkdir(parents=True, exist_ok=True)
        codes = {case: run_forked(case, out) for case in CASES}
        (out / "codes.json").write_text(json.dumps(codes))
    else:
        main(sys.argv[1])
