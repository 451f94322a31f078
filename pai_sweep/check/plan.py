"""What PerforatedAI 3.2.9 will do with a model, predicted without importing it (torch only).

    plan = plan_model(model, dendrites)                        # ModelPlan: perforated, tracked, loose parameters
    check_output_dimensions(model, plan, dendrites, batch)     # IntegrationError where the library would exit 0

The walk of the library's convert_module, the plan of perforated and tracked modules, each module's
output dimensions (overrides, the library's own shortening) and the one forward pass that reads their
output shapes. The adapter (perforate.py) and `pai-sweep check` (inspect, dims, auto) share it, so the
check and training never disagree.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator

import torch
from torch import nn

from pai_sweep.errors import ConfigError, IntegrationError, close_names, one_line
from pai_sweep.schema.dendrites import dendrites_config

# Parameter-holding layers that are tracked (kept as-is, saved and reloaded) when no perforated
# module contains them; the library stops in pdb on an untracked norm layer.
AUTO_TRACK_TYPES = (
    "BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "SyncBatchNorm", "LazyBatchNorm1d", "LazyBatchNorm2d",
    "LazyBatchNorm3d", "LayerNorm", "GroupNorm", "RMSNorm", "InstanceNorm1d", "InstanceNorm2d",
    "InstanceNorm3d", "LocalResponseNorm", "Embedding", "EmbeddingBag", "PReLU",
)

SKIPPED_PATHS = (".base_model",)  # the library's default module_names_to_not_save: never converted


@dataclass
class ModelPlan:
    """What perforate_model will do with a model, predicted before it runs."""

    perforated: list[str] = field(default_factory=list)  # module paths (".head") that get dendrites
    tracked: list[str] = field(default_factory=list)  # module paths kept as-is but tracked
    track_names: list[str] = field(default_factory=list)  # class names added to module_names_to_track
    track_params: list[str] = field(default_factory=list)  # loose parameter ids added to parameter_ids_to_track
    notes: list[str] = field(default_factory=list)  # lines for the log
    transformer: bool = False  # the model holds attention layers (mha fast path must be off)


# ---------------------------------------------------------------- the walk and the plan


def walk_modules(model: nn.Module, names_perf, ids_perf, names_track, ids_track) -> list[tuple[str, nn.Module, str]]:
    """(path, module, "perforated" | "tracked") in the library's order, without importing it.

    Mirrors perforatedai 3.2.9's convert_module: tracking wins over perforating, a match stops
    the descent, a module reachable twice keeps its first path. `pai-sweep check` uses the same walk.
    """
    found: list[tuple[str, nn.Module, str]] = []
    seen: set[int] = {id(model)}

    def visit(module, prefix: str) -> None:
        for name, child in module.named_children():
            path = f"{prefix}.{name}"
            if id(child) in seen or path in SKIPPED_PATHS:
                continue
            seen.add(id(child))
            cls = type(child).__name__
            if path in ids_track or cls in names_track:
                found.append((path, child, "tracked"))
            elif path in ids_perf or cls in names_perf:
                found.append((path, child, "perforated"))
            else:
                visit(child, path)

    visit(model, "")
    return found


def _walk(model: nn.Module, names_perf, ids_perf, names_track, ids_track) -> tuple[list[str], list[str]]:
    found = walk_modules(model, names_perf, ids_perf, names_track, ids_track)
    return [p for p, _, kind in found if kind == "perforated"], [p for p, _, kind in found if kind == "tracked"]


def _covered(param_id: str, roots: Iterable[str]) -> bool:
    return any(param_id.startswith(root + ".") for root in roots)


def refuse_wrappers(model: nn.Module) -> None:
    """DataParallel/DDP wrappers and any attribute named `module` stop the library in pdb."""
    if isinstance(model, (nn.DataParallel, nn.parallel.DistributedDataParallel)):
        raise IntegrationError(
            f"the model is wrapped in {type(model).__name__}: pass the bare model (one GPU per trial; "
            "pai-sweep runs trials in parallel instead)"
        )
    for path, _ in model.named_modules():
        if "module" in path.split("."):
            raise IntegrationError(
                f"the model has a submodule named 'module' (.{path}), which PerforatedAI takes for a "
                "DataParallel wrapper and stops in pdb: rename the attribute"
            )


def plan_model(model: nn.Module, dendrites_cfg: Any) -> ModelPlan:
    """Predict perforated/tracked modules and track every loose parameter; raise on configs that cannot work."""
    d = dendrites_config(dendrites_cfg)
    refuse_wrappers(model)
    paths = {"." + p for p, _ in model.named_modules() if p}
    for key in ("module_ids_to_perforate", "module_ids_to_track"):
        for ident in getattr(d, key):
            if ident not in paths:
                raise IntegrationError(
                    f"dendrites.{key} entry {ident!r} names no module of this model{close_names(ident, paths)}; "
                    f"module paths look like {', '.join(sorted(paths)[:4])}"
                )
    if type(model).__name__ in d.module_names_to_perforate:
        raise IntegrationError(
            f"dendrites.module_names_to_perforate names the whole model's class {type(model).__name__}: "
            "list the layer types inside it instead"
        )
    plan = ModelPlan(track_names=list(d.module_names_to_track))
    plan.transformer = any(isinstance(m, (nn.TransformerEncoderLayer, nn.TransformerDecoderLayer, nn.MultiheadAttention))
                           for m in model.modules())
    names_perf, ids_perf = set(d.module_names_to_perforate), set(d.module_ids_to_perforate)
    ids_track = set(d.module_ids_to_track)
    perforated, tracked = _walk(model, names_perf, ids_perf, set(plan.track_names), ids_track)
    if not perforated:
        kinds = sorted({type(m).__name__ for m in model.modules()} - {type(model).__name__})
        raise IntegrationError(
            f"no module of the model matches dendrites.module_names_to_perforate={list(d.module_names_to_perforate)} "
            f"or module_ids_to_perforate={list(d.module_ids_to_perforate)}; its module types are: {', '.join(kinds)}"
        )
    # Loose parameters: norm/embedding layers are tracked by class, anything else by parameter id.
    modules = dict(model.named_modules())
    for name, _param in model.named_parameters():
        pid = "." + name
        if _covered(pid, perforated + tracked):
            continue
        owner = modules[name.rsplit(".", 1)[0]] if "." in name else model
        cls = type(owner).__name__
        if cls in AUTO_TRACK_TYPES and owner is not model:
            if cls not in plan.track_names:
                plan.track_names.append(cls)
                plan.notes.append(f"tracking {cls} layers (their parameters are in no perforated module)")
            perforated, tracked = _walk(model, names_perf, ids_perf, set(plan.track_names), ids_track)
        else:
            plan.track_params.append(pid)
    if plan.track_params:
        plan.notes.append(f"tracking loose parameters {', '.join(plan.track_params)} (in no perforated or tracked module)")
    plan.perforated, plan.tracked = perforated, tracked
    return plan


# ---------------------------------------------------------------- output dimensions


def override_key(path: str) -> str:
    """The key of dendrites.output_dimension_overrides for a module path: no leading dot ("head")."""
    return path.lstrip(".")


def override_dims(dendrites_cfg: Any, strict: bool = True) -> dict[str, list[int]]:
    """dendrites.output_dimension_overrides by module path (".head"), as lists of ints, from a DendritesSpec,
    DictConfig or dict. strict: ConfigError for one that does not mark exactly one neuron axis (the check
    reports it as a mismatch instead)."""
    if hasattr(dendrites_cfg, "get"):
        overrides = dendrites_cfg.get("output_dimension_overrides", None)
    else:
        overrides = getattr(dendrites_cfg, "output_dimension_overrides", None)
    out = {}
    for path, dims in dict(overrides or {}).items():
        dims = [int(v) for v in dims]
        if strict and dims.count(0) != 1:
            raise ConfigError(f"dendrites.output_dimension_overrides.{path}={dims} must mark the neuron axis with exactly one 0")
        out["." + override_key(str(path))] = dims
    return out


def effective_dims(module: nn.Module, dims: list[int]) -> list[int]:
    """The library's own shortening: Linear keeps [batch, neuron], Conv1d three axes, when the rest are -1."""
    dims = list(dims)
    if isinstance(module, nn.Linear) and all(v == -1 for v in dims[2:]):
        return dims[:2]
    if isinstance(module, nn.Conv1d) and all(v == -1 for v in dims[3:]):
        return dims[:3]
    return dims


def _suggest(module: nn.Module, ndim: int) -> list[int]:
    if ndim == 3 and isinstance(module, nn.Linear):
        return [-1, -1, 0]  # [batch, tokens, features]
    return [-1, 0] + [-1] * max(0, ndim - 2)


@contextlib.contextmanager
def probing(model: nn.Module, fastpath_off: bool = True) -> Iterator[None]:
    """eval + no_grad without side effects; fastpath_off: the transformer fast path off, so inner Linear layers are called."""
    was_training = model.training
    mha = getattr(torch.backends, "mha", None) if fastpath_off else None
    fastpath = mha.get_fastpath_enabled() if mha is not None else None
    model.eval()
    if mha is not None:
        mha.set_fastpath_enabled(False)
    try:
        with torch.no_grad():
            yield
    finally:
        model.train(was_training)
        if mha is not None:
            mha.set_fastpath_enabled(fastpath)


def hooked_forward(model: nn.Module, paths: Iterable[str], sample: Any, record: Callable[[str, Any], None],
                   fastpath_off: bool = True) -> None:
    """One forward pass of `sample` under probing(); record(path, output) for each call of each module path ("" the model)."""
    handles = []
    for path in paths:
        target = model if path == "" else model.get_submodule(path.lstrip("."))
        handles.append(target.register_forward_hook(lambda _module, _inputs, output, path=path: record(path, output)))
    try:
        with probing(model, fastpath_off):
            model(sample)
    finally:
        for handle in handles:
            handle.remove()


def forward_shapes(model: nn.Module, paths: list[str], sample: Any) -> tuple[dict[str, Any], list[str]]:
    """Output shape (list of ints, or the output's type name) of each module path, and the call order."""
    shapes: dict[str, Any] = {}
    order: list[str] = []

    def record(path: str, output: Any) -> None:
        if path not in shapes:
            order.append(path)
            shapes[path] = list(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__

    hooked_forward(model, paths, sample, record)
    return shapes, order


def check_output_dimensions(model: nn.Module, plan: ModelPlan, dendrites_cfg: Any, example: Any) -> None:
    """Run one batch and compare each perforated module's output rank with its output_dimensions.

    A mismatch would end the process with sys.exit(0) on the first backward pass.
    """
    d = dendrites_config(dendrites_cfg)
    overrides = override_dims(d)
    unknown = sorted(set(overrides) - set(plan.perforated))
    if unknown:
        raise IntegrationError(
            f"dendrites.output_dimension_overrides names {', '.join(p.lstrip('.') for p in unknown)}, which is not a "
            f"perforated module; perforated modules: {', '.join(p.lstrip('.') for p in plan.perforated)}"
        )
    shapes: dict[str, tuple[int, ...]] = {}

    def record(path: str, out: Any) -> None:
        out = out[0] if isinstance(out, (tuple, list)) else out
        if isinstance(out, torch.Tensor) and path not in shapes:
            shapes[path] = tuple(out.shape)

    try:  # the fast path left as it is (the adapter turns it off for attention models after this check)
        hooked_forward(model, plan.perforated, example, record, fastpath_off=False)
    except Exception as exc:
        raise IntegrationError(f"the model failed on one example batch of the data ({one_line(exc)}): check model and data shapes") from exc
    for path in plan.perforated:
        if path not in shapes:
            continue  # not used in forward: the library raises no dims error for it
        module = model.get_submodule(path.lstrip("."))
        configured = overrides.get(path) or [int(v) for v in d.output_dimensions]
        dims = overrides.get(path) or effective_dims(module, configured)
        shape = shapes[path]
        if len(dims) != len(shape):
            key = f"dendrites.output_dimension_overrides={{{path.lstrip('.')}: {_suggest(module, len(shape))}}}"
            given = "output_dimension_overrides" if path in overrides else "output_dimensions"
            read = f" (read as {dims} for {type(module).__name__})" if dims != configured else ""
            raise IntegrationError(
                f"dendrites.{given}={configured}{read} does not fit module {path.lstrip('.')} ({type(module).__name__}) whose output "
                f"is {list(shape)} ({len(shape)}-D; PerforatedAI would exit 0 on the first backward pass): set {key}"
            )
