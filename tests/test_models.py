"""build_model: every model builds for digits shapes and classifies; torchvision layouts are the real ones; bad input is one line."""

from __future__ import annotations

import re

import pytest
import torch
import torchvision
from torch import nn

from pai_sweep.compose import compose, conf_dir
from pai_sweep.errors import ModelError
from pai_sweep.models import MODELS, build_model, count_params

BUILT_IN = [m for m in MODELS if m != "custom"]
IMAGE_MODELS = [m for m in BUILT_IN if m != "conv1d"]  # conv1d takes sequences [C, L]
SHAPES = [(1, 8, 8), (3, 32, 32)]  # digits, digits32
TINY = {"width_mult": 0.125, "depth": 1}  # torchvision models at a width that builds and runs in milliseconds


def tiny(name: str) -> dict:
    return {"name": name, **(TINY if name in ("resnet18", "resnet34", "resnet50", "mobilenet_v2", "efficientnet_b0") else {})}


@pytest.mark.parametrize("shape", SHAPES, ids=["digits", "digits32"])
@pytest.mark.parametrize("name", IMAGE_MODELS)
def test_every_model_classifies_digits_shapes(name, shape):
    model = build_model(tiny(name), shape, num_classes=7)
    out = model(torch.rand(3, *shape))  # train mode: BatchNorm sees a real batch
    assert out.shape == (3, 7)
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    # PerforatedAI stops in pdb on any attribute named `module`
    assert not any("module" in path.split(".") for path, _ in model.named_modules())


@pytest.mark.parametrize("option", sorted(p.stem for p in (conf_dir() / "model").glob("*.yaml")))
def test_every_model_option_composes_and_builds(option, tmp_path, monkeypatch):
    extra = []
    if option == "custom":
        (tmp_path / "user_models.py").write_text(
            "import torch\n"
            "def net(num_classes, hidden=5):\n"
            "    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, hidden), torch.nn.Linear(hidden, num_classes))\n"
        )
        monkeypatch.syspath_prepend(str(tmp_path))
        extra = ["model._target_=user_models.net", "+model.kwargs.hidden=9"]
    shrink = [] if option == "custom" else ["model.width_mult=0.25", "model.depth=1"]
    cfg = compose([f"model={option}", *shrink, *extra])
    shape = (1, 40) if option == "conv1d" else (1, 8, 8)  # an MNIST-1D sequence, else a digit
    model = build_model(cfg.model, shape, 10)
    assert model.eval()(torch.rand(2, *shape)).shape == (2, 10)
    if option == "custom":
        assert model[1].out_features == 9  # model.kwargs reached the user's callable


@pytest.mark.parametrize(
    "name,reference",
    [
        ("resnet18", torchvision.models.resnet18),
        ("resnet50", torchvision.models.resnet50),
        ("mobilenet_v2", torchvision.models.mobilenet_v2),
        ("efficientnet_b0", torchvision.models.efficientnet_b0),
    ],
)
def test_full_size_is_torchvisions_own_layout(name, reference):
    ours = build_model({"name": name}, (3, 32, 32), 10).state_dict()
    theirs = reference(weights=None, num_classes=10).state_dict()
    assert {k: v.shape for k, v in ours.items()} == {k: v.shape for k, v in theirs.items()}


def test_resnet_blocks_stay_torchvision_blocks():
    # the resnet dendrite preset perforates by class name: BasicBlock / Bottleneck
    kinds = {type(m).__name__ for m in build_model({"name": "resnet50", **TINY}, (1, 8, 8), 10).modules()}
    assert "Bottleneck" in kinds
    kinds = {type(m).__name__ for m in build_model({"name": "resnet18", **TINY}, (1, 8, 8), 10).modules()}
    assert "BasicBlock" in kinds


def test_transformer_tokens_and_head():
    model = build_model({"name": "transformer"}, (3, 32, 32), 10)
    assert isinstance(model.head, nn.Linear) and model.head.out_features == 10
    tokens = model.embed(model.tokens(torch.rand(2, 3, 32, 32)))
    assert tokens.shape == (2, 64, 32)  # [B, T, F]: 8x8 patches of side 4
    assert model.encoder.layers[0].self_attn.batch_first
    for shape in [(6, 5), (12,)]:  # token rows, flat features
        assert build_model({"name": "transformer"}, shape, 3)(torch.rand(2, *shape)).shape == (2, 3)


@pytest.mark.parametrize("shape", [(1, 40), (3, 17), (2, 1)], ids=["mnist1d", "3ch", "length1"])
def test_conv1d_classifies_sequences(shape):
    model = build_model({"name": "conv1d"}, shape, num_classes=7)
    out = model(torch.rand(4, *shape))  # train mode: BatchNorm1d sees a real batch
    assert out.shape == (4, 7)
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    convs = [m for m in model.modules() if isinstance(m, nn.Conv1d)]
    assert [c.out_channels for c in convs] == [8, 16, 32] and convs[0].in_channels == shape[0]
    assert sum(isinstance(m, nn.BatchNorm1d) for m in model.modules()) == 3 and isinstance(model.head, nn.Linear)
    plain = build_model({"name": "conv1d", "batch_norm": False, "kernel_size": 5}, shape, 7)
    assert not any(isinstance(m, nn.BatchNorm1d) for m in plain.modules()) and plain.features[0].kernel_size == (5,)


def test_input_channels_follow_the_data():
    for name in ("resnet18", "mobilenet_v2", "efficientnet_b0"):
        model = build_model({"name": name, **TINY}, (1, 8, 8), 10)
        first = next(m for m in model.modules() if isinstance(m, nn.Conv2d))
        assert first.in_channels == 1


def test_weights_load_what_fits(tmp_path):
    source = build_model({"name": "mlp"}, (1, 8, 8), 10)
    path = tmp_path / "mlp.pt"
    torch.save(source.state_dict(), path)
    same = build_model({"name": "mlp", "weights": str(path)}, (1, 8, 8), 10)
    assert all(torch.equal(a, b) for a, b in zip(source.state_dict().values(), same.state_dict().values()))
    other_head = build_model({"name": "mlp", "weights": str(path)}, (1, 8, 8), 4)  # body loads, head stays new
    assert torch.equal(other_head.body[1].weight, source.body[1].weight)
    assert other_head.head.out_features == 4


def test_count_params_counts_trainable_only():
    model = build_model({"name": "mlp", "hidden": [5]}, (4,), 3)
    assert count_params(model) == 4 * 5 + 5 + 5 * 3 + 3
    model.head.weight.requires_grad_(False)
    assert count_params(model) == 4 * 5 + 5 + 3


def _user_module(tmp_path, monkeypatch, body: str) -> str:
    """A real importable module holding `body`, named per test (imports are cached by name)."""
    name = "user_" + re.sub(r"\W", "_", tmp_path.name)
    (tmp_path / f"{name}.py").write_text("import torch\n" + body)
    monkeypatch.syspath_prepend(str(tmp_path))
    return name


@pytest.mark.parametrize(
    "cfg,shape,needle",
    [
        ({"name": "resnet99"}, (1, 8, 8), "valid models: mlp"),
        ({"name": "mlp", "hiden": [3]}, (1, 8, 8), "hiden"),
        ({"name": "small_cnn"}, (64,), "use model=mlp or model=transformer"),
        ({"name": "conv1d"}, (1, 8, 8), "model=conv1d needs sequence data [C, L] but the data gives (1, 8, 8); use data=mnist1d"),
        ({"name": "conv1d", "channels": []}, (1, 40), "model.channels=[] leaves conv1d without convolutions"),
        ({"name": "conv1d", "kernel_size": 0}, (1, 40), "model.kernel_size=0 must be >= 1"),
        ({"name": "resnet18"}, (64,), "needs image data"),
        ({"name": "mlp", "width_mult": 0}, (1, 8, 8), "model.width_mult=0"),
        ({"name": "mlp", "weights": "/no/such/file.pt"}, (1, 8, 8), "model.weights='/no/such/file.pt' does not exist"),
        ({"name": "custom"}, (1, 8, 8), "model._target_=your.module.ModelClass"),
        ({"name": "custom", "_target_": "nopkg_xyz.models.Net"}, (1, 8, 8), "cannot be imported (No module named 'nopkg_xyz')"),
        ({"name": "custom", "_target_": "torch.nn.NoSuchNet"}, (1, 8, 8), "has no attribute 'NoSuchNet'"),
        ({"name": "custom", "_target_": "torch"}, (1, 8, 8), "is not an import path"),
    ],
)
def test_bad_model_input_is_one_line(cfg, shape, needle):
    with pytest.raises(ModelError) as err:
        build_model(cfg, shape, 10)
    assert needle in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize(
    "body,cfg,needle",
    [
        ("def net():\n    return 3\n", {}, "returned a int, not a torch.nn.Module"),
        ("def net(size):\n    return torch.nn.Linear(size, 2)\n", {}, "failed with kwargs"),
        ("class Wrapped(torch.nn.Module):\n    def __init__(self):\n        super().__init__()\n        self.module = torch.nn.Linear(64, 10)\n"
         "def net():\n    return Wrapped()\n", {}, "submodule named 'module'"),
        ("def net():\n    return torch.nn.Flatten()\n", {"width_mult": 0.5}, "takes no 'width_mult' argument"),
    ],
)
def test_bad_custom_model_is_one_line(body, cfg, needle, tmp_path, monkeypatch):
    module = _user_module(tmp_path, monkeypatch, body)
    with pytest.raises(ModelError) as err:
        build_model({"name": "custom", "_target_": f"{module}.net", **cfg}, (1, 8, 8), 10)
    assert needle in str(err.value) and "\n" not in str(err.value)


def test_custom_model_gets_shape_and_downsizing(tmp_path, monkeypatch):
    module = _user_module(
        tmp_path, monkeypatch,
        "def net(input_shape, num_classes, width_mult=1.0):\n"
        "    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(input_shape[-1] ** 2, int(16 * width_mult)),\n"
        "                               torch.nn.Linear(int(16 * width_mult), num_classes))\n",
    )
    model = build_model({"name": "custom", "_target_": f"{module}.net", "width_mult": 0.5}, (1, 8, 8), 6)
    assert model[1].out_features == 8 and model(torch.rand(2, 1, 8, 8)).shape == (2, 6)
