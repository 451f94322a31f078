"""Custom models for the check tests (imported by `model._target_`, also inside the worker subprocess)."""

from __future__ import annotations

import torch
from torch import nn


class ConvTokens(nn.Module):
    """Conv stem -> pixels as tokens [B, T, F] -> a token Linear -> mean -> `classifier` on [B, C].

    No built-in preset fits: cnn/linear_only give the token Linear 2-D dims, and the
    transformer preset's override names `head`, which this model does not have.
    """

    def __init__(self, input_shape=(1, 8, 8), num_classes: int = 10, width: int = 6):
        super().__init__()
        self.stem = nn.Conv2d(input_shape[0], width, kernel_size=3, padding=1)
        self.mix = nn.Linear(width, width)
        self.classifier = nn.Linear(width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = torch.relu(self.stem(x)).flatten(2).transpose(1, 2)  # [B, H*W, C]
        return self.classifier(torch.relu(self.mix(tokens)).mean(dim=1))


class WithSpare(nn.Module):
    """An MLP with a Linear layer that forward never calls (no gradient: a pdb trap if perforated)."""

    def __init__(self, input_shape=(1, 8, 8), num_classes: int = 10):
        super().__init__()
        features = 1
        for side in input_shape:
            features *= side
        self.fc = nn.Linear(features, 16)
        self.spare = nn.Linear(16, 16)
        self.head = nn.Linear(16, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.fc(x.flatten(1))))


def _epoch(model, opt, data) -> None:
    for x, y in data.train:
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()


def train_fn_own_optimizer(session, data):
    """A custom loop that keeps an optimizer it built itself (stale after a restructure)."""
    model = session.model
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    complete = False
    while not complete:
        _epoch(model, opt, data)
        model, restructured, complete = session.report(0.5)


def train_fn_good(session, data):
    """The documented pattern: model back from report, optimizer fetched again after a restructure."""
    model, opt = session.model, session.optimizer()
    while True:
        _epoch(model, opt, data)
        model, restructured, complete = session.report(0.5)
        if complete:
            break
        if restructured:
            opt = session.optimizer()


class WrongInput(nn.Module):
    """A Linear sized for 10 features on 64-feature digits: forward fails."""

    def __init__(self, input_shape=(1, 8, 8), num_classes: int = 10):
        super().__init__()
        self.fc = nn.Linear(10, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.flatten(1))
