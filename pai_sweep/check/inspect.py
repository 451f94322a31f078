"""What PerforatedAI would do with each module of a model, without importing it: which modules it would
perforate, track or leave unwrapped, and the output_dimensions each perforated one needs.

The walk mirrors perforatedai 3.2.9's `convert_module`: a module whose path is in
module_ids_to_track, or whose class name is in module_names_to_track, is tracked; else one
whose path is in module_ids_to_perforate or whose class name (exact `type(m).__name__`,
subclasses do not count) is in module_names_to_perforate is perforated; else the walk goes
into its children. Ids are exact paths with a leading dot (".layer1.0.conv1"). Parameters
that end up in neither kind of module are "unwrapped": without
`set_unwrapped_modules_confirmed(True)` the library stops in pdb on them.

Output dimensions (check_dims) are inferred for every module that would be perforated from one forward pass.

A perforated module's dims list has one entry per axis of its output: 0 marks the neuron
axis (the one whose size is the module's out_features/out_channels), -1 every other axis.
PerforatedAI 3.2.9 checks them on the first backward pass: a wrong length, or a fixed
size that differs, ends the process with sys.exit(0). A 0 on the wrong axis passes that
check silently and grows dendrites per token/pixel instead of per neuron.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from torch import nn

from pai_sweep.check.diagnose import override_arg
from pai_sweep.check.plan import effective_dims, forward_shapes, override_dims, override_key, walk_modules

# Classes PerforatedAI's setup guide names as block-level candidates, beside any user class holding Linear/Conv.
KNOWN_BLOCKS = ("BasicBlock", "Bottleneck", "TransformerEncoderLayer", "TransformerDecoderLayer", "InvertedResidual")
NEURON_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
NORM_LAYERS = (nn.modules.batchnorm._BatchNorm, nn.modules.instancenorm._InstanceNorm, nn.LayerNorm, nn.GroupNorm)
CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict)


@dataclass
class ModuleInfo:
    path: str  # the library's name: "." + dotted path (".head", ".encoder.layers.0.linear1")
    type: str  # class name
    params: int  # parameters inside it (children included)
    neurons: int | None = None  # out_features / out_channels (blocks: of their last Linear/Conv)


@dataclass
class Inspection:
    perforated: list[ModuleInfo] = field(default_factory=list)
    tracked: list[ModuleInfo] = field(default_factory=list)
    unwrapped_params: list[str] = field(default_factory=list)  # ".positions.weight", ...
    unwrapped_modules: list[ModuleInfo] = field(default_factory=list)  # modules owning those params
    blocks: list[ModuleInfo] = field(default_factory=list)  # block-level perforation candidates
    problems: list[str] = field(default_factory=list)  # what would stop or break a run, one line each
    notes: list[str] = field(default_factory=list)  # what a person should know, not fatal
    total_params: int = 0
    has_module_attribute: bool = False  # the library takes an attribute named `module` for DataParallel

    @property
    def perforated_params(self) -> int:
        return sum(m.params for m in self.perforated)

    def to_dict(self) -> dict[str, Any]:
        def mods(items: list[ModuleInfo]) -> list[dict[str, Any]]:
            return [vars(m).copy() for m in items]

        return {
            "perforated": mods(self.perforated),
            "tracked": mods(self.tracked),
            "unwrapped_params": list(self.unwrapped_params),
            "unwrapped_modules": mods(self.unwrapped_modules),
            "blocks": mods(self.blocks),
            "problems": list(self.problems),
            "notes": list(self.notes),
            "total_params": self.total_params,
            "perforated_params": self.perforated_params,
        }


def setting(cfg: Any, key: str, default: Any = ()) -> list[Any]:
    """A list-valued dendrites setting from a DictConfig, dict or dataclass; missing means `default`."""
    value = cfg.get(key, default) if hasattr(cfg, "get") else getattr(cfg, key, default)
    return list(value) if value is not None else list(default)


def neuron_count(module: nn.Module) -> int | None:
    """Size of the neuron axis: out_features / out_channels; for a block, that of its last Linear/Conv."""
    if isinstance(module, nn.Linear):
        return int(module.out_features)
    if isinstance(module, NEURON_LAYERS):
        return int(module.out_channels)
    if isinstance(module, nn.Embedding):
        return int(module.embedding_dim)
    last = None
    for sub in module.modules():
        if sub is not module and isinstance(sub, NEURON_LAYERS):
            last = sub
    return neuron_count(last) if last is not None else None


def _info(path: str, module: nn.Module) -> ModuleInfo:
    return ModuleInfo(path, type(module).__name__, sum(p.numel() for p in module.parameters()), neuron_count(module))


def inspect_model(model: nn.Module, dendrites_cfg: Any) -> Inspection:
    """Classify every module of `model` as PerforatedAI would under `dendrites_cfg` (names, ids, tracking)."""
    names_perf = set(setting(dendrites_cfg, "module_names_to_perforate"))
    ids_perf = set(setting(dendrites_cfg, "module_ids_to_perforate"))
    names_track = set(setting(dendrites_cfg, "module_names_to_track"))
    ids_track = set(setting(dendrites_cfg, "module_ids_to_track"))
    out = Inspection(total_params=sum(p.numel() for p in model.parameters()))
    covered: set[int] = set()  # ids of parameters inside perforated or tracked modules

    def cover(module: nn.Module) -> None:
        covered.update(id(p) for p in module.parameters())

    def classify(path: str, child: nn.Module, role: str) -> None:
        kind = type(child).__name__
        cover(child)
        if role == "tracked":
            out.tracked.append(_info(path, child))
            return
        out.perforated.append(_info(path, child))
        if isinstance(child, NORM_LAYERS):
            out.problems.append(f"{path} ({kind}) is a normalization layer set to be perforated: the library stops in pdb; track it instead (dendrites.module_names_to_track=[{kind}])")
        if not any(p.requires_grad for p in child.parameters()):
            why = "has no parameters" if not list(child.parameters()) else "is frozen (requires_grad=False)"
            out.problems.append(f"{path} ({kind}) would be perforated but {why}: no gradient reaches it and the library stops in pdb; track it (dendrites.module_ids_to_track=[{path}])")

    if type(model).__name__ in names_perf:
        out.perforated.append(_info("", model))
        cover(model)
    else:  # the worker's own walk (plan.walk_modules), so check and training never disagree
        for path, child, role in walk_modules(model, names_perf, ids_perf, names_track, ids_track):
            classify(path, child, role)
    _unwrapped(model, covered, out)
    _blocks(model, out)
    out.has_module_attribute = isinstance(model, (nn.DataParallel, nn.parallel.DistributedDataParallel)) or "module" in model.__dir__()
    if out.has_module_attribute:
        out.problems.append("the model is wrapped in DataParallel/DDP or has an attribute named 'module': the library stops in pdb at the first add_validation_score; pass the bare model (model.module) and rename the attribute")
    if not out.perforated:
        out.problems.append(f"no module would be perforated: none of {sorted(names_perf | ids_perf) or '[]'} matches a class name or path in this model; use dendrites=auto or set dendrites.module_names_to_perforate")
    return out


def _unwrapped(model: nn.Module, covered: set[int], out: Inspection) -> None:
    owners: dict[str, nn.Module] = {}
    for mpath, module in model.named_modules():
        for pname, param in module.named_parameters(recurse=False):
            if id(param) in covered:
                continue
            covered.add(id(param))  # shared parameters are listed once
            full = f".{mpath}.{pname}" if mpath else f".{pname}"
            out.unwrapped_params.append(full)
            owners.setdefault(f".{mpath}" if mpath else "", module)
    for path, module in owners.items():
        out.unwrapped_modules.append(ModuleInfo(path, type(module).__name__, sum(p.numel() for p in module.parameters(recurse=False))))
    if out.unwrapped_params:
        kinds = sorted({m.type for m in out.unwrapped_modules})
        out.notes.append(
            f"{len(out.unwrapped_params)} parameters ({', '.join(kinds)}) are in no perforated or tracked module: they train but get no dendrites, "
            "and the library would stop in pdb on them unless they are tracked"
        )


def _blocks(model: nn.Module, out: Inspection) -> None:
    for mpath, module in model.named_modules():
        if not mpath or isinstance(module, CONTAINERS) or isinstance(module, NEURON_LAYERS):
            continue
        kind = type(module).__name__
        user_class = not type(module).__module__.startswith("torch.")
        holds = any(isinstance(m, NEURON_LAYERS) for m in module.modules() if m is not module)
        if holds and (kind in KNOWN_BLOCKS or user_class):
            out.blocks.append(_info(f".{mpath}", module))


# ---------------------------------------------------------------- output dimensions

OK = "ok"
MISMATCH = "mismatch"  # the library would exit 0 on it
WRONG_AXIS = "wrong_axis"  # runs, but the neuron axis is not where out_features sits
UNSURE_AXIS = "unsure_axis"  # a block whose 0 sits on an axis of another size than its last layer's width: a note
UNUSED = "unused"  # never called in forward: no gradient, the library stops in pdb
NOT_TENSOR = "not_tensor"  # output is a tuple/dict: the library needs a processor and stops in pdb


@dataclass
class ModuleDims:
    path: str
    type: str
    status: str
    shape: list[int] | None = None  # output shape on the sample batch
    configured: list[int] | None = None  # what the library would use (override, else global, shortened)
    inferred: list[int] | None = None  # what fits the output
    source: str = "global"  # "global" or "override"

    def shape_text(self) -> str:
        """The output shape with the batch axis as B: [B, 16, 8, 8]."""
        return "[" + ", ".join(["B"] + [str(s) for s in (self.shape or [])[1:]]) + "]" if self.shape else "?"

    def message(self) -> str:
        if self.status == MISMATCH:
            return f"{self.path} ({self.type}) output {self.shape_text()}: configured {self.configured} does not fit; {self.path} expects {self.inferred} ({override_arg(self.path, self.inferred)})"
        if self.status == WRONG_AXIS:
            return f"{self.path} ({self.type}) output {self.shape_text()}: configured {self.configured} puts the neuron axis where out_features is not; {self.path} expects {self.inferred} ({override_arg(self.path, self.inferred)})"
        if self.status == UNSURE_AXIS:
            return f"{self.path} ({self.type}) output {self.shape_text()}: configured {self.configured} puts the neuron axis on an axis of another size than its last Linear/Conv; {self.inferred} would match it, check which axis holds its neurons"
        if self.status == UNUSED:
            return f"{self.path} ({self.type}) is never called in forward: no gradient reaches it and the library stops in pdb; track it (dendrites.module_ids_to_track=[{self.path}])"
        if self.status == NOT_TENSOR:
            return f"{self.path} ({self.type}) returns a tuple, not one tensor: the library stops in pdb; perforate the layers inside it instead"
        return f"{self.path} ({self.type}) output {self.shape_text()}: {self.configured} fits"


@dataclass
class DimsReport:
    modules: list[ModuleDims] = field(default_factory=list)  # in forward-call order (unused ones last)

    @property
    def problems(self) -> list[ModuleDims]:
        return [m for m in self.modules if m.status not in (OK, UNSURE_AXIS)]

    @property
    def warnings(self) -> list[ModuleDims]:
        return [m for m in self.modules if m.status == UNSURE_AXIS]

    def inferred(self) -> dict[str, list[int]]:
        return {m.path: m.inferred for m in self.modules if m.inferred is not None}

    def to_dict(self) -> dict[str, Any]:
        return {
            "modules": [vars(m).copy() for m in self.modules],
            "problems": [m.message() for m in self.problems],
            "warnings": [m.message() for m in self.warnings],
        }


def configured_dims(module: nn.Module, path: str, dendrites_cfg: Any) -> tuple[list[int], str]:
    """The dims the library would give this module: its override, else the global list (shortened as 3.2.9 does)."""
    dims = override_dims(dendrites_cfg, strict=False).get("." + override_key(path))
    if dims is not None:
        return dims, "override"
    return effective_dims(module, [int(d) for d in setting(dendrites_cfg, "output_dimensions", [-1, 0, -1, -1])]), "global"


def infer_dims(shape: list[int], neurons: int | None, conv_like: bool) -> list[int]:
    """-1 everywhere but 0 on the neuron axis: the non-batch axis whose size is `neurons`."""
    rank = len(shape)
    if rank < 2:
        return [0] if rank == 1 else []
    matches = [i for i in range(1, rank) if neurons is not None and shape[i] == neurons]
    if len(matches) == 1:
        axis = matches[0]
    elif matches:
        # several axes have that size: channels-first for convolutions, features-last otherwise
        axis = 1 if conv_like and 1 in matches else matches[-1]
    else:
        axis = 1 if conv_like or rank == 4 else rank - 1
    return [0 if i == axis else -1 for i in range(rank)]


def library_accepts(dims: list[int], shape: list[int]) -> bool:
    """3.2.9's checks: exactly one 0, same length as the output, every other entry -1, 1 or the exact size."""
    if len(dims) != len(shape) or dims.count(0) != 1:
        return False
    return all(d in (0, -1, 1) or d == s for d, s in zip(dims, shape))


def check_dims(model: nn.Module, perforated: list[ModuleInfo], dendrites_cfg: Any, sample: Any) -> DimsReport:
    """Compare configured and inferred dims of every perforated module on one sample batch."""
    shapes, order = forward_shapes(model, [m.path for m in perforated], sample)
    by_path = {m.path: m for m in perforated}
    report = DimsReport()
    for path in order + [m.path for m in perforated if m.path not in shapes]:
        info = by_path[path]
        module = model if path == "" else model.get_submodule(path.lstrip("."))
        configured, source = configured_dims(module, path, dendrites_cfg)
        shape = shapes.get(path)
        if shape is None:
            report.modules.append(ModuleDims(path, info.type, UNUSED, None, configured, None, source))
            continue
        if isinstance(shape, str):
            report.modules.append(ModuleDims(path, info.type, NOT_TENSOR, None, configured, None, source))
            continue
        conv_like = not isinstance(module, nn.Linear) and len(shape) >= 3 and info.neurons is not None and shape[1] == info.neurons
        inferred = infer_dims(shape, info.neurons, conv_like or isinstance(module, (nn.Conv2d, nn.Conv3d, nn.Conv1d)))
        if not library_accepts(configured, shape):
            status = MISMATCH
        elif info.neurons is not None and shape[configured.index(0)] != info.neurons:
            # an axis of another size: dendrites per token/pixel, not per neuron (certain for a layer, a guess for a block)
            status = WRONG_AXIS if isinstance(module, NEURON_LAYERS) else UNSURE_AXIS
        else:
            status = OK
        report.modules.append(ModuleDims(path, info.type, status, shape, configured, inferred, source))
    return report
