"""Train a 64-8-10 MLP on scikit-learn's digits with PerforatedAI 3.2.9 and leave its output folder.

Run as a script in a fresh process (the library keeps global state): python pai_run.py OUT_DIR [EPOCHS]
History switch mode with a short patience, so the run adds dendrites within a few epochs.
"""

import os
import sys

import torch
from sklearn.datasets import load_digits

out_dir, max_epochs = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 12
os.makedirs(out_dir, exist_ok=True)
os.chdir(out_dir)  # PerforatedAI writes ./<save_name>/

from perforatedai import globals_perforatedai as GPA  # noqa: E402
from perforatedai import tracker_perforatedai as TPA  # noqa: E402
from perforatedai import utils_perforatedai as UPA  # noqa: E402


class _NoPlot:
    """Stands in for matplotlib in the tracker: drawing costs most of each epoch, the CSVs are written anyway."""

    def __getattr__(self, name):
        return self

    def __call__(self, *args, **kwargs):
        return self

    def __iter__(self):
        return iter((self, self))


TPA.plt = _NoPlot()  # a private name of perforatedai 3.2.9 (pinned); see reference/perforatedai.md "Cost"

torch.manual_seed(0)
digits = load_digits()
x = torch.tensor(digits.data, dtype=torch.float32) / 16.0
y = torch.tensor(digits.target)
xt, yt, xv, yv = x[:1200], y[:1200], x[1200:], y[1200:]

GPA.pc.set_configuration_confirmed(True)
GPA.pc.set_unwrapped_modules_confirmed(True)
GPA.pc.set_checked_skipped_modules(True)
GPA.pc.set_testing_dendrite_capacity(False)
GPA.pc.set_device("cpu")
GPA.pc.set_switch_mode(GPA.pc.DOING_HISTORY)
GPA.pc.set_n_epochs_to_switch(2)
GPA.pc.set_max_dendrites(2)
GPA.pc.set_improvement_threshold([0.05, 0.0])  # a coarse first plateau: the first switch comes early
GPA.pc.set_test_saves(False)  # fewer checkpoint files per epoch
GPA.pc.set_verbose(False)

model = torch.nn.Sequential(torch.nn.Linear(64, 8), torch.nn.ReLU(), torch.nn.Linear(8, 10))
model = UPA.perforate_model(model, save_name="pai", maximizing_score=True)
GPA.pai_tracker.set_optimizer(torch.optim.Adam)
GPA.pai_tracker.set_scheduler(torch.optim.lr_scheduler.ReduceLROnPlateau)
opt_args = {"params": model.parameters(), "lr": 3e-2}
sched_args = {"mode": "max", "patience": 1}
opt, sched = GPA.pai_tracker.setup_optimizer(model, opt_args, sched_args)


def accuracy(net, xs, ys):
    net.eval()
    with torch.no_grad():
        return float((net(xs).argmax(1) == ys).float().mean() * 100)


for epoch in range(max_epochs):
    model.train()
    for i in range(0, len(xt), 128):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(xt[i : i + 128]), yt[i : i + 128])
        loss.backward()
        opt.step()
    GPA.pai_tracker.add_extra_score(accuracy(model, xt, yt), "Train")
    model, restructured, complete = GPA.pai_tracker.add_validation_score(accuracy(model, xv, yv), model)
    if complete:
        break
    if restructured:
        opt_args["params"] = model.parameters()
        opt, sched = GPA.pai_tracker.setup_optimizer(model, opt_args, sched_args)
print("epochs run:", epoch + 1)
