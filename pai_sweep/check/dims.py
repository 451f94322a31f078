"""output_dimensions for every module that would be perforated, inferred from one forward pass.

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
from pai_sweep.check.inspect import NEURON_LAYERS, ModuleInfo, setting
from pai_sweep.check.plan import effective_dims, forward_shapes, override_dims, override_key

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
