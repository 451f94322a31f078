"""Every value a sweep records is a value the trial used (issue #19).

A searched key or a command-line override that the chosen options ignore is refused with one
line before any folder exists (one case per group); downsize.width_mult searched on a custom
model builds models of the searched widths, through the real driver, worker and sqlite study.
"""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest
import torch
import yaml
from optuna.trial import TrialState
from torch import nn

from pai_sweep.cli import main
from pai_sweep.compose import compose, recipe_names
from pai_sweep.consumers import check_space
from pai_sweep.driver import run_sweep
from pai_sweep.errors import ConfigError, SweepError
from pai_sweep.models import apply_downsize, build_model, count_params
from pai_sweep.search_space import apply_params, parse_space

TESTS = Path(__file__).resolve().parent


class WidthNet(nn.Module):
    """A custom model that takes width_mult (downsizing reaches it)."""

    def __init__(self, input_shape, num_classes, width_mult: float = 1.0):
        super().__init__()
        features = int(torch.tensor(input_shape).prod())
        hidden = max(1, round(32 * width_mult))
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(features, hidden), nn.ReLU())
        self.head = nn.Linear(hidden, num_classes)

    def forward(self, x):
        return self.head(self.body(x))


class FixedNet(WidthNet):
    """A custom model without width_mult: nothing can shrink it."""

    def __init__(self, input_shape, num_classes):
        super().__init__(input_shape, num_classes)


def with_space(cfg, space: dict, *, sweep_dir: Path):
    """The composed config with this search space (Hydra cannot add dotted keys to sweep.space from the shell)."""
    return apply_params(cfg, {"sweep.space": space, "sweep.dir": str(sweep_dir), "sweep.check_first": False, "tracking.name": "off"})


# group -> (overrides, searched key and spec, the words of the refusal)
REFUSED = {
    "downsize": (["model=mlp"], {"downsize.width_mult": {"type": "categorical", "choices": [0.25, 0.5, 1.0]}},
                 "downsize=none ignores downsize.width_mult, so those trials would record values they never used; add downsize=width"),
    "model": (["model=small_cnn"], {"model.hidden": {"type": "categorical", "choices": [[8], [16]]}},
              "model=small_cnn ignores model.hidden"),
    "custom model": (["model=custom", "model._target_=test_consumers.FixedNet", "downsize=width"],
                     {"downsize.width_mult": {"type": "float", "low": 0.25, "high": 1.0}},
                     "model=custom ignores downsize.width_mult, so those trials would record values they never used; "
                     "give test_consumers.FixedNet a 'width_mult' argument"),
    "train": (["train.train_fn=pai_sweep.examples.regression.train_fn"], {"train.loss": {"type": "categorical", "choices": ["mse", "cross_entropy"]}},
              "train.train_fn=pai_sweep.examples.regression.train_fn ignores train.loss"),
    "switch mode": ([], {"dendrites.fixed_switch_num": {"type": "int", "low": 2, "high": 8}},
                    "dendrites.switch_mode=history ignores dendrites.fixed_switch_num, so those trials would record values they never used; "
                    "use dendrites.switch_mode=fixed, or search dendrites.switch_mode and add when: {dendrites.switch_mode: [fixed]}"),
    "dendrites off": (["dendrites=off"], {"dendrites.max_dendrites": {"type": "int", "low": 1, "high": 3}},
                      "dendrites.enabled=false ignores dendrites.max_dendrites"),
    "auto preset": (["dendrites=auto"], {"dendrites.module_names_to_perforate": {"type": "categorical", "choices": [["Linear"], ["Conv2d"]]}},
                    "dendrites.preset=auto ignores dendrites.module_names_to_perforate"),
}


@pytest.mark.parametrize("group", sorted(REFUSED))
def test_a_searched_key_the_chosen_option_ignores_is_refused_before_any_folder(tmp_path, group):
    overrides, space, words = REFUSED[group]
    cfg = with_space(compose(overrides), space, sweep_dir=tmp_path / "sweep")
    with pytest.raises(SweepError) as err:
        run_sweep(cfg)
    message = str(err.value)
    assert words in message and "\n" not in message and message.startswith(f"sweep.space.{next(iter(space))}: ")
    assert not (tmp_path / "sweep").exists()


def test_a_conditional_key_is_refused_only_where_it_does_nothing(tmp_path):
    cfg = compose(["model=mlp"])
    name = {"downsize.name": {"type": "categorical", "choices": ["none", "width"]}}
    width = {"type": "categorical", "choices": [0.25, 0.5]}
    with pytest.raises(SweepError, match=r"downsize=none ignores downsize.width_mult.*add when: \{downsize.name: \[width\]\} to it"):
        check_space(parse_space({**name, "downsize.width_mult": width}, cfg), cfg)
    conditioned = {**name, "downsize.width_mult": {**width, "when": {"downsize.name": "width"}}}
    check_space(parse_space(conditioned, cfg), cfg)  # searched only where it acts: accepted
    switch = {"dendrites.switch_mode": {"type": "categorical", "choices": ["history", "fixed"]},
              "dendrites.n_epochs_to_switch": {"type": "int", "low": 2, "high": 5, "when": {"dendrites.switch_mode": "history"}},
              "dendrites.fixed_switch_num": {"type": "int", "low": 2, "high": 5, "when": {"dendrites.switch_mode": "fixed"}}}
    check_space(parse_space(switch, cfg), cfg)


@pytest.mark.parametrize("recipe", recipe_names())
def test_every_recipe_searches_only_keys_its_trials_use(recipe):
    cfg = compose([f"+recipe={recipe}"])
    check_space(parse_space(cfg.sweep.space, cfg), cfg)


@pytest.mark.parametrize(
    "overrides, words",
    [
        (["downsize.width_mult=0.5"], "downsize.width_mult=0.5 does nothing: downsize=none ignores downsize.width_mult; add downsize=width"),
        (["model=small_cnn", "model.hidden=[16]"], "model.hidden=[16] does nothing: model=small_cnn ignores model.hidden; use model=mlp"),
        (["train.train_fn=pai_sweep.examples.regression.train_fn", "train.loss=mse"], "train.loss=mse does nothing"),
        (["dendrites.fixed_switch_num=5"], "dendrites.switch_mode=history ignores dendrites.fixed_switch_num; use dendrites.switch_mode=fixed"),
        (["dendrites=off", "train.graphs=every_epoch"], "dendrites.enabled=false ignores train.graphs; use dendrites.enabled=true"),
    ],
)
def test_an_override_that_does_nothing_is_one_line_before_any_folder(tmp_path, capsys, overrides, words):
    with pytest.raises(ConfigError, match=words.replace("[", r"\[").replace("]", r"\]")):
        compose(overrides)
    code = main(["run", *overrides, "--dir", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 2 and words in err and err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "run").exists()


def test_overrides_that_act_compose():
    cfg = compose(["model=mlp", "model.hidden=[16]", "downsize=width", "downsize.width_mult=0.25", "dendrites=off",
                   "dendrites.n_epochs_to_switch=2"])
    assert cfg.downsize.width_mult == 0.25 and cfg.dendrites.n_epochs_to_switch == 2  # the plain loop's patience
    assert compose(["dendrites.switch_mode=fixed", "dendrites.fixed_switch_num=3"]).dendrites.fixed_switch_num == 3


def test_downsize_none_builds_the_model_as_configured():
    model = {"name": "mlp", "hidden": [16]}
    assert apply_downsize(model, {"name": "none", "width_mult": 0.25}).width_mult == 1.0
    assert apply_downsize(model, {"name": "width", "width_mult": 0.25}).width_mult == 0.25


def test_width_mult_searched_on_a_custom_model_builds_the_searched_widths(tmp_path, monkeypatch):
    # the issue's scenario, as a user would run it after the refusal's fix (downsize=width): real driver, worker, study
    monkeypatch.setenv("PYTHONPATH", str(TESTS))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    cfg = compose([
        "model=custom", "model._target_=test_consumers.WidthNet", "downsize=width", "dendrites=linear_only",
        "dendrites.switch_mode=every_time", "dendrites.max_dendrites=1", "data.limit=200", "train.max_epochs=1",
        "train.test_saves=false", "sweep.n_trials=2", "sweep.in_flight=1", "sweep.sampler=grid", "sweep.rule_trials=false",
        "sweep.derived_trials=false", "launcher.poll_interval=0.1",
    ])
    cfg = with_space(cfg, {"downsize.width_mult": {"type": "categorical", "choices": [0.25, 1.0]}}, sweep_dir=tmp_path / "sweep")
    run_sweep(cfg)
    study = optuna.load_study(study_name=cfg.sweep.name, storage=f"sqlite:///{tmp_path / 'sweep' / 'study.db'}")
    built = {}
    for t in study.get_trials():
        assert t.state == TrialState.COMPLETE, t.user_attrs.get("reason")
        width = t.params["downsize.width_mult"]
        result = json.loads((Path(t.user_attrs["trial_dir"]) / "result.json").read_text())
        direct = count_params(build_model(apply_downsize(cfg.model, {"name": "width", "width_mult": width}), (1, 8, 8), 10))
        assert result["built"]["model"]["width_mult"] == width and result["base_params"] == result["built"]["params"] == direct
        assert yaml.safe_load((Path(t.user_attrs["trial_dir"]) / "run.yaml").read_text())["downsize"]["width_mult"] == width
        built[width] = result["base_params"]
    assert sorted(built) == [0.25, 1.0] and built[0.25] < built[1.0]
