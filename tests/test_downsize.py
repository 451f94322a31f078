"""Downsizing: the config a run builds, parameter counts that really drop, and swaps that make no sense refused."""

from __future__ import annotations

import pytest
from omegaconf import DictConfig, OmegaConf

from pai_sweep.compose import compose, conf_dir
from pai_sweep.errors import ConfigError, ModelError
from pai_sweep.models import apply_downsize, build_model, count_params

DIGITS, DIGITS32 = (1, 8, 8), (3, 32, 32)


def params(model_cfg, downsize_cfg=None, shape=DIGITS) -> int:
    return count_params(build_model(apply_downsize(model_cfg, downsize_cfg or {}), shape, 10))


def test_apply_downsize_combines_without_touching_the_input():
    model = OmegaConf.create({"name": "resnet50", "width_mult": 0.5, "depth": 3, "weights": "/w.pt"})
    out = apply_downsize(model, {"name": "family", "family": "resnet18", "width_mult": 0.5, "depth": 2})
    assert isinstance(out, DictConfig)
    assert (out.name, out.width_mult, out.depth, out.weights) == ("resnet18", 0.25, 2, None)
    assert (model.name, model.width_mult, model.depth) == ("resnet50", 0.5, 3)
    assert apply_downsize(model, {"name": "none"}).weights == "/w.pt"  # width/depth keep weights: matching entries load


@pytest.mark.parametrize("name", ["mlp", "small_cnn", "transformer", "resnet18", "mobilenet_v2", "efficientnet_b0"])
def test_width_drops_parameters(name):
    base = {"name": name, "depth": 1} if name in ("resnet18", "mobilenet_v2", "efficientnet_b0") else {"name": name}
    full, half = params(base), params(base, {"name": "width", "width_mult": 0.5})
    assert half < 0.6 * full


@pytest.mark.parametrize("name", ["mlp", "small_cnn", "transformer", "resnet50", "mobilenet_v2", "efficientnet_b0"])
def test_depth_drops_parameters(name):
    base = {"name": name, "width_mult": 0.25} if name in ("resnet50", "mobilenet_v2", "efficientnet_b0") else {"name": name}
    assert params(base, {"name": "depth", "depth": 1}) < params(base)


def test_conv1d_width_and_depth_shrink_like_small_cnn():
    seq = (1, 40)  # an MNIST-1D sequence
    full = params({"name": "conv1d"}, shape=seq)
    assert full == 2442  # [8, 16, 32] channels, kernel 3, BatchNorm1d, 10 classes (docs/models_and_data.md)
    assert params({"name": "conv1d"}, {"name": "width", "width_mult": 0.5}, seq) == 746  # [4, 8, 16]
    assert params({"name": "conv1d"}, {"name": "depth", "depth": 2}, seq) == 650  # the first two stages
    both = apply_downsize({"name": "conv1d", "width_mult": 0.5}, {"name": "width", "width_mult": 0.5, "depth": 1})
    model = build_model(both, seq, 10)
    assert [m.out_channels for m in model.modules() if hasattr(m, "out_channels")] == [2]  # 8 x 0.25, one stage
    with pytest.raises(ModelError, match="model=conv1d has no smaller family"):
        apply_downsize({"name": "conv1d"}, {"name": "family", "family": "small_cnn"})


def test_resnet_depth_caps_blocks_per_stage():
    model = build_model(apply_downsize({"name": "resnet50", "width_mult": 0.125}, {"name": "depth", "depth": 2}), DIGITS, 10)
    assert [len(getattr(model, f"layer{i}")) for i in range(1, 5)] == [2, 2, 2, 2]


def test_family_ladder_drops_parameters():
    counts = [params({"name": "resnet50"}, {"name": "family", "family": f}) for f in ("resnet50", "resnet34", "resnet18", "efficientnet_b0", "mobilenet_v2")]
    assert counts == sorted(counts, reverse=True) and len(set(counts)) == len(counts)


@pytest.mark.parametrize("option", sorted(p.stem for p in (conf_dir() / "downsize").glob("*.yaml")))
def test_every_downsize_option_composes_and_shrinks_resnet50(option):
    cfg = compose(["model=resnet50", "model.width_mult=0.25", f"downsize={option}"])
    before = count_params(build_model(cfg.model, DIGITS32, 10))
    after = count_params(build_model(apply_downsize(cfg.model, cfg.downsize), DIGITS32, 10))
    assert after == before if option == "none" else after < before


@pytest.mark.parametrize(
    "model,downsize,needle",
    [
        ({"name": "mlp"}, {"name": "family", "family": "resnet18"}, "model=mlp has no smaller family"),
        ({"name": "resnet18"}, {"name": "family", "family": "resnet50"}, "valid: mobilenet_v2, efficientnet_b0"),
        ({"name": "mobilenet_v2"}, {"name": "family", "family": "resnet18"}, "use downsize=width or downsize=depth"),
        ({"name": "resnet50"}, {"name": "family"}, "downsize=family needs downsize.family=NAME"),
        ({"name": "mlp"}, {"name": "width", "width_mult": 0}, "downsize.width_mult=0"),
        ({"name": "mlp"}, {"name": "depth", "depth": 0}, "downsize.depth=0 must be >= 1"),
        ({"name": "mlp"}, {"name": "width", "widht_mult": 0.5}, "widht_mult"),
    ],
)
def test_downsizing_that_makes_no_sense_is_one_line(model, downsize, needle):
    with pytest.raises(ModelError) as err:
        apply_downsize(model, downsize)
    assert needle in str(err.value) and "\n" not in str(err.value)


def test_bad_downsizing_stops_at_compose_time():
    with pytest.raises(ConfigError, match="model=small_cnn has no smaller family"):
        compose(["downsize=family"])
