"""Which modules PerforatedAI would perforate, track or leave unwrapped, without importing it.

The walk mirrors perforatedai 3.2.9's `convert_module`: a module whose path is in
module_ids_to_track, or whose class name is in module_names_to_track, is tracked; else one
whose path is in module_ids_to_perforate or whose class name (exact `type(m).__name__`,
subclasses do not count) is in module_names_to_perforate is perforated; else the walk goes
into its children. Ids are exact paths with a leading dot (".layer1.0.conv1"). Parameters
that end up in neither kind of module are "unwrapped": without
`set_unwrapped_modules_confirmed(True)` the library stops in pdb on them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from torch import nn

from pai_sweep.check.plan import walk_modules

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
