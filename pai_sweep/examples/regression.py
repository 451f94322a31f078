"""A regression task with its own model, data and training function: the custom-loop example.

scikit-learn's diabetes data (442 patients, 10 features, disease progression after a year)
ships with scikit-learn, so this runs offline. Used by recipes/custom_template.yaml:

    pai-sweep +recipe=custom_template

The score is the validation mean squared error (lower is better): dendrites.maximizing_score=false.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import TensorDataset


class RegressionData(TensorDataset):
    task = "regression"  # tells pai-sweep the target is a number, not a class index
    num_outputs = 1


def make_datasets(seed: int = 0):
    """(train, val, test) of standardised diabetes features and targets; val/test held out by pai-sweep."""
    from sklearn.datasets import load_diabetes

    x, y = load_diabetes(return_X_y=True)
    x = torch.tensor((x - x.mean(0)) / x.std(0), dtype=torch.float32)
    y = torch.tensor((y - y.mean()) / y.std(), dtype=torch.float32).unsqueeze(1)
    return RegressionData(x, y), None, None


class RegressionMLP(nn.Module):
    """A small MLP: features -> hidden -> 1 value."""

    def __init__(self, input_shape=(10,), num_classes: int = 1, hidden: int = 16):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(input_shape[-1], hidden), nn.ReLU(), nn.Linear(hidden, num_classes))

    def forward(self, x):
        return self.body(x)


def predict(model, x, y):
    """The model's output in the target's shape: [B, 1] against a [B] target would broadcast to [B, B] in
    mse_loss (a wrong loss with only a UserWarning); reshaping makes each prediction meet its own target."""
    out = model(x)
    if out.numel() != y.numel():
        raise ValueError(f"the model gives {tuple(out.shape)} for targets of shape {tuple(y.shape)}: "
                         "set num_outputs on the dataset to the target's width")
    return out.reshape(y.shape)


def _mse(model, loader, device) -> float:
    model.eval()
    total, n = 0.0, 0
    with torch.no_grad():
        for x, y in loader:
            x, y = x.to(device), y.to(device).float()
            total += float(nn.functional.mse_loss(predict(model, x, y), y, reduction="sum"))
            n += y.numel()
    model.train()
    return total / max(n, 1)


def train_fn(session, data) -> None:
    """Your own loop through PAISession: train an epoch, report the scores, follow restructures."""
    model, optimizer = session.model, session.optimizer()
    while True:
        model.train()
        losses = []
        for x, y in data.train:
            x, y = x.to(session.device), y.to(session.device).float()
            optimizer.zero_grad()
            loss = nn.functional.mse_loss(predict(model, x, y), y)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        val = _mse(model, data.val, session.device)
        model, restructured, complete = session.report(
            val, train=_mse(model, data.train, session.device), test=_mse(model, data.test, session.device),
            loss=sum(losses) / len(losses),
        )
        if complete:
            return
        if restructured:  # PerforatedAI added dendrites: new parameters, so a new optimizer
            optimizer = session.optimizer()
