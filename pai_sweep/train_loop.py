"""The built-in training loop (train.train_fn unset): train an epoch, score train/val/test, report to the session
(training.PAISession), until PerforatedAI says the trial is complete; the loss by name (train.loss)."""

from __future__ import annotations

import math
from typing import Any, Callable

from pai_sweep.errors import ConfigError
from pai_sweep.models.target import resolve_callable
from pai_sweep.reads import Reads
from pai_sweep.training import PAISession, TrialFailure, setting

# train.loss is read by the built-in loop only: a train.train_fn computes its own loss (consumers.py).
READS = Reads(
    selector="train.train_fn",
    choices=(None,),
    governs=lambda field: field == "train.loss",
    acts=lambda field, cfg: not cfg.train.train_fn,
    hint=lambda field, cfg: f"train.train_fn={cfg.train.train_fn} computes its own loss: choose it there, or remove train.train_fn",
)


def loss_function(name: str, task: str):
    import torch.nn.functional as F

    if name == "cross_entropy":
        return F.cross_entropy
    if name == "mse":
        def mse(out, y):
            if out.numel() != y.numel():  # mse_loss would broadcast [B, k] against [B, m]: a wrong loss, only a warning
                raise ConfigError(
                    f"train.loss=mse: the model gives {tuple(out.shape)} for targets of shape {tuple(y.shape)}; "
                    "make the model's output width the target's (num_outputs on a regression dataset)"
                )
            return F.mse_loss(out.reshape(y.shape), y.float())

        return mse
    return resolve_callable(name, "train.loss")


def evaluate(model: Any, loader: Any, device: Any, task: str, loss_fn: Callable, max_batches: int | None = None) -> float:
    """Accuracy in percent (classification) or mean loss (regression) over a loader (its first max_batches)."""
    import torch

    model.eval()
    total, correct, loss_sum = 0, 0, 0.0
    with torch.no_grad():
        for i, (x, y) in enumerate(loader):
            if max_batches is not None and i >= max_batches:
                break
            x, y = x.to(device), y.to(device)
            out = model(x)
            if task == "classification":
                correct += int((out.argmax(dim=1) == y).sum())
            else:
                loss_sum += float(loss_fn(out, y)) * len(y)
            total += len(y)
    model.train()
    if total == 0:
        return 0.0
    return 100.0 * correct / total if task == "classification" else loss_sum / total


def train_epoch(model: Any, loader: Any, optimizer: Any, device: Any, loss_fn: Callable, max_batches: int | None = None) -> float:
    """One pass over the training data; returns the mean loss (NaN if any batch loss was NaN)."""
    model.train()
    loss_sum, seen = 0.0, 0
    for i, (x, y) in enumerate(loader):
        if max_batches is not None and i >= max_batches:
            break
        x, y = x.to(device), y.to(device)
        optimizer.zero_grad()
        loss = loss_fn(model(x), y)
        value = float(loss.detach())
        if not math.isfinite(value):
            return value
        loss.backward()
        optimizer.step()
        loss_sum += value * len(y)
        seen += len(y)
    return loss_sum / max(seen, 1)


def classification_loop(session: PAISession, data: Any, train_cfg: Any, max_batches: int | None = None) -> None:
    """The built-in train_fn: train, score train/val/test, report, until complete."""
    task = getattr(data, "task", "classification")
    loss_fn = loss_function(str(setting(train_cfg, "loss", "cross_entropy")), task)
    model, optimizer = session.model, session.optimizer()
    while True:
        loss = train_epoch(model, data.train, optimizer, session.device, loss_fn, max_batches)
        if not math.isfinite(loss):
            raise TrialFailure(
                f"training loss is {loss} at epoch {session.epoch}: training diverged; lower train.optimizer.args.lr"
            )
        # max_batches (the capacity test) also shortens the scoring: it asks "can dendrites be added", not "how good"
        val = evaluate(model, data.val, session.device, task, loss_fn, max_batches)
        train = evaluate(model, data.train, session.device, task, loss_fn) if max_batches is None else None
        test = evaluate(model, data.test, session.device, task, loss_fn, max_batches)
        model, restructured, complete = session.report(val, train=train, test=test, loss=loss)
        if complete:
            return
        if restructured:
            optimizer = session.optimizer()
