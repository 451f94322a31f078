"""build_model: a ModelConfig -> an nn.Module (built-in by name, or the user's `_target_`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from pai_sweep.errors import ModelError
from pai_sweep.models.downsize import model_spec
from pai_sweep.models.target import accepted, import_target
from pai_sweep.models.zoo import READS as ZOO_READS
from pai_sweep.models.zoo import build_zoo

ZOO = ("mlp", "small_cnn", "conv1d", "transformer")
VISION = ("resnet18", "resnet34", "resnet50", "mobilenet_v2", "efficientnet_b0")
MODELS = ZOO + VISION + ("custom",)


def build_model(model_cfg: Any, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    spec = model_spec(model_cfg)
    input_shape = tuple(int(s) for s in input_shape)
    if not spec.width_mult > 0:
        raise ModelError(f"model.width_mult={spec.width_mult} must be > 0 (1.0 is the model as published)")
    if spec.depth is not None and spec.depth < 1:
        raise ModelError(f"model.depth={spec.depth} must be >= 1 (or null for every block/layer)")
    if spec.name in ZOO:
        model = build_zoo(spec, input_shape, num_classes)
    elif spec.name in VISION:
        if len(input_shape) != 3:
            raise ModelError(f"model={spec.name} needs image data [C, H, W] but the data gives {input_shape}; use model=mlp or model=transformer")
        from pai_sweep.models.vision import build_vision  # torchvision: imported only for its models (seconds)

        model = build_vision(spec, input_shape, num_classes)
    elif spec.name == "custom":
        model = _custom(spec, input_shape, num_classes)
    else:
        raise ModelError(f"model.name={spec.name!r} is not known; valid models: {', '.join(MODELS)}")
    _refuse_module_attribute(model, spec.name)
    if spec.weights:
        load_weights(model, spec.weights)
    return model


def fields_used(model_cfg: Any) -> set[str]:
    """The ModelConfig fields build_model reads for this model (each builder declares its own READS)."""
    spec = model_spec(model_cfg)
    if spec.name in ZOO_READS:
        return {"name", "weights", *ZOO_READS[spec.name]}
    if spec.name in VISION:
        from pai_sweep.models.vision import READS as VISION_READS

        return {"name", "weights", *VISION_READS[spec.name]}
    used = {"name", "weights", "_target_", "kwargs"}
    if spec.name != "custom":
        return used | {"width_mult", "depth"}  # an unknown name is refused by validate_run
    try:
        factory = import_target(spec._target_, "model._target_", ModelError, "mypkg.models.Net")
    except ModelError:  # the build says why; nothing can be told about its arguments here
        return used | {"width_mult", "depth"}
    # _custom below offers width_mult / depth only to a callable that takes them
    return used | set(accepted(factory, {"width_mult": 1.0, "depth": 1})) | ({"width_mult", "depth"} & set(spec.kwargs))


def _custom(spec, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    example = "mypkg.models.Net"
    if not spec._target_:
        raise ModelError(f"model=custom needs model._target_=your.module.ModelClass, e.g. {example}")
    factory = import_target(spec._target_, "model._target_", ModelError, example)
    kwargs = dict(spec.kwargs)
    offered = {"num_classes": num_classes, "input_shape": input_shape}
    # downsizing only reaches a custom model that takes width_mult / depth itself
    if spec.width_mult != 1.0:
        offered["width_mult"] = float(spec.width_mult)
    if spec.depth is not None:
        offered["depth"] = int(spec.depth)
    given = {k: v for k, v in accepted(factory, offered).items() if k not in kwargs}
    for knob in ("width_mult", "depth"):
        if knob in offered and knob not in given and knob not in kwargs:
            raise ModelError(f"model._target_={spec._target_!r} takes no '{knob}' argument, so model.{knob}/downsize cannot shrink it; add the argument or use downsize=none")
    try:
        model = factory(**kwargs, **given)
    except Exception as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise ModelError(f"model._target_={spec._target_!r} failed with kwargs {sorted(kwargs) + sorted(given)} ({reason}): fix model.kwargs") from exc
    if not isinstance(model, nn.Module):
        raise ModelError(f"model._target_={spec._target_!r} returned a {type(model).__name__}, not a torch.nn.Module: return the model itself")
    return model


def _refuse_module_attribute(model: nn.Module, name: str) -> None:
    # PerforatedAI stops in pdb on any attribute named `module` (it takes it for DataParallel)
    for path, _ in model.named_modules():
        if "module" in path.split("."):
            raise ModelError(f"model={name} has a submodule named 'module' ({path}), which PerforatedAI rejects: rename it or unwrap DataParallel")


def load_weights(model: nn.Module, path: str) -> None:
    """Load every entry of the state_dict at `path` whose name and shape fit; heads of another size are left as built."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise ModelError(f"model.weights={path!r} does not exist: give the path of a saved state_dict or model.weights=null")
    try:
        state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ModelError(f"model.weights={path!r} is not a readable torch state_dict ({type(exc).__name__}): save one with torch.save(model.state_dict(), path)") from exc
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    own = model.state_dict()
    fitting = {k: v for k, v in state.items() if k in own and hasattr(v, "shape") and v.shape == own[k].shape}
    if not fitting:
        raise ModelError(f"model.weights={path!r} has no entry that fits this model (names or shapes differ): give weights saved from the same model and width")
    model.load_state_dict(fitting, strict=False)


def count_params(model: nn.Module) -> int:
    """Trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
