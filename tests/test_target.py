"""Dotted paths (`_target_`, train.optimizer.type, train.train_fn) go through Hydra's lookup with one-line errors."""

from __future__ import annotations

import sys

import pytest
import torch

from pai_sweep.errors import ConfigError, ModelError
from pai_sweep.models.target import import_target, locate
from pai_sweep.models.target import resolve_callable, resolve_class


def test_locate_finds_modules_attributes_and_nested_attributes():
    assert locate("torch.nn.Linear") is torch.nn.Linear
    assert locate("torch.optim.lr_scheduler.StepLR") is torch.optim.lr_scheduler.StepLR
    assert locate("torch.nn.Linear.forward") is torch.nn.Linear.forward  # a class attribute: Hydra's lookup walks it


def test_locate_failures_are_one_line_and_log_nothing(tmp_path, monkeypatch, caplog):
    caplog.set_level("DEBUG")
    with pytest.raises(AttributeError) as missing:
        locate("torch.nn.NoSuchNet")
    assert str(missing.value) == "module 'torch.nn' has no attribute 'NoSuchNet'"
    with pytest.raises(ImportError) as absent:
        locate("nopkg_xyz.models.Net")
    assert str(absent.value) == "No module named 'nopkg_xyz'"
    (tmp_path / "broken_mod_xyz.py").write_text("raise RuntimeError('bad\\nimport')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ImportError) as broken:
        locate("broken_mod_xyz.Net")
    assert str(broken.value) == "bad import"
    with pytest.raises(ImportError, match="invalid dotstring"):
        locate("torch..nn")
    sys.modules.pop("broken_mod_xyz", None)
    assert not [r for r in caplog.records if r.name == "hydra.utils"]  # its own multi-line error log is silenced


def test_import_target_keeps_its_messages():
    assert import_target("torch.nn.Linear", "model._target_", ModelError, "mypkg.Net") is torch.nn.Linear
    with pytest.raises(ModelError) as err:
        import_target("torch.nn.NoSuchNet", "model._target_", ModelError, "mypkg.Net")
    assert str(err.value) == ("model._target_='torch.nn.NoSuchNet': module 'torch.nn' has no attribute 'NoSuchNet'; "
                              "give an importable path like mypkg.Net")
    with pytest.raises(ModelError, match=r"^k='sys.maxsize' is a int, not a callable"):
        import_target("sys.maxsize", "k", ModelError, "x")


def test_training_resolves_bare_names_and_full_paths():
    assert resolve_class("Adam", "torch.optim", "train.optimizer.type") is torch.optim.Adam
    assert resolve_class("torch.optim.SGD", "torch.optim", "train.optimizer.type") is torch.optim.SGD
    assert resolve_callable("torch.nn.functional.mse_loss", "train.loss") is torch.nn.functional.mse_loss
    with pytest.raises(ConfigError) as err:
        resolve_class("Adamm", "torch.optim", "train.optimizer.type")
    assert str(err.value) == ("train.optimizer.type='Adamm' cannot be imported (module 'torch.optim' has no attribute 'Adamm'): "
                              "use a torch.optim class name or a full import path")
    with pytest.raises(ConfigError, match=r"^train.train_fn='nopkg_xyz.fn' cannot be imported \(No module named 'nopkg_xyz'\)"):
        resolve_callable("nopkg_xyz.fn", "train.train_fn")
    with pytest.raises(ConfigError, match="must be a full import path"):
        resolve_callable("my_fn", "train.train_fn")
