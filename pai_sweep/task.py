"""The task (classification or regression), the loss and the score: checks that they agree, and the score's name.

Used by `pai-sweep check` (verdict), the worker (before training) and the driver's progress header.
No torch import.
"""

from __future__ import annotations

from typing import Any

CLASSIFICATION_LOSSES = ("cross_entropy",)
REGRESSION_LOSSES = ("mse",)


def _get(node: Any, key: str, default: Any = None) -> Any:
    try:
        value = node.get(key, default)
    except AttributeError:
        value = getattr(node, key, default)
    return default if value is None else value


def loss_problems(train: Any, task: str) -> list[str]:
    """The built-in loop's train.loss against the data's task; one line each, with the fix."""
    if _get(train, "train_fn"):
        return []  # your train_fn computes its own loss
    loss = str(_get(train, "loss", "cross_entropy"))
    if task == "regression" and loss in CLASSIFICATION_LOSSES:
        return [f"the data is a regression task (numeric targets) but train.loss={loss} is a classification loss: "
                "set train.loss=mse (and dendrites.maximizing_score=false)"]
    if task == "classification" and loss in REGRESSION_LOSSES:
        return [f"the data is a classification task (class labels) but train.loss={loss} is a regression loss: "
                "set train.loss=cross_entropy"]
    return []


def config_task(data: Any) -> str | None:
    """The task the config alone decides: every built-in data set is classification; data=custom declares its own
    (a dataset's `task` attribute, known once it is loaded: the worker and `pai-sweep check` judge it then)."""
    return None if str(_get(data, "name", "custom")) == "custom" else "classification"


def direction_problems(cfg: Any) -> list[str]:
    """Known before any data is loaded: the built-in loop with train.loss=mse scores the validation mse (a loss)."""
    train = cfg.train
    if _get(train, "train_fn") or str(_get(train, "loss", "cross_entropy")) not in REGRESSION_LOSSES:
        return []
    if bool(_get(cfg.dendrites, "maximizing_score", True)):
        return [f"train.loss={train.loss} makes the score the validation {train.loss} (lower is better) but "
                "dendrites.maximizing_score=true: set dendrites.maximizing_score=false train.scheduler.args.mode=min"]
    return []


def score_label(cfg: Any) -> str:
    """What the sweep optimises, in words: "val accuracy (%)", "val mse", "test loss mypkg.l1",
    "val score from train.train_fn"."""
    metric = str(_get(cfg.objective, "metric", "val"))
    train = cfg.train
    if _get(train, "train_fn"):
        return f"{metric} score from train.train_fn"
    loss = str(_get(train, "loss", "cross_entropy"))
    if loss in REGRESSION_LOSSES:
        return f"{metric} {loss}"
    if loss in CLASSIFICATION_LOSSES and bool(_get(cfg.dendrites, "maximizing_score", True)):
        return f"{metric} accuracy (%)"
    return f"{metric} {loss} loss" if loss in CLASSIFICATION_LOSSES else f"{metric} loss {loss}"


def objective_label(cfg: Any, directions: list[str]) -> str:
    """The progress header's "optimising ..." part: the score, its direction, and the objective's other terms."""
    score = f"{score_label(cfg)} ({directions[0]})"
    name = str(_get(cfg.objective, "name", "accuracy"))
    if name == "efficiency" and len(directions) > 1:
        return f"{score}, parameters ({directions[1]}) [objective=efficiency]"
    if name == "scalar":
        return f"{score} with a parameter penalty [objective=scalar]"
    return f"{score} [objective={name}]"
