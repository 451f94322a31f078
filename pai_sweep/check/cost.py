"""Parameter counts before training: 1..N dendrites, and perforating only the top k modules.

Measured on perforatedai 3.2.9 (UPA.count_params after each dendrite of the capacity test,
MLP, CNN and CNN with a tracked stem, exact to the parameter): with B the model's
parameters, P the parameters inside perforated modules and N the sum of their neuron
counts, a model with d >= 1 dendrites has

    B + d * P + N * (d**2 + d - 1)

parameters: one full copy of every perforated module per dendrite, plus the
dendrite-to-neuron weights (d rows per module at dendrite d), dendrite-to-dendrite weights
(d - 1 rows) and the next candidate's weights (d - 1 rows).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from pai_sweep.check.inspect import ModuleInfo


@dataclass
class PerforatedSize:
    path: str
    params: int
    neurons: int


def params_with(base: int, perforated: Sequence[PerforatedSize], dendrites: int) -> int:
    """Projected parameter count with `dendrites` dendrites on every module in `perforated`."""
    if dendrites <= 0:
        return int(base)
    copies = sum(m.params for m in perforated)
    neurons = sum(m.neurons for m in perforated)
    return int(base + dendrites * copies + neurons * (dendrites**2 + dendrites - 1))


def sizes(perforated: Sequence[ModuleInfo], neurons: dict[str, int] | None = None) -> list[PerforatedSize]:
    """Sizes from the inspection; `neurons` (path -> size of the neuron axis seen in forward) wins when given."""
    neurons = neurons or {}
    return [PerforatedSize(m.path, m.params, int(neurons.get(m.path, m.neurons or 0))) for m in perforated]


def projection(base: int, perforated: Sequence[PerforatedSize], max_dendrites: int) -> list[dict[str, Any]]:
    """One row per dendrite count 0..max_dendrites: params and the ratio to the base model."""
    rows = []
    for d in range(0, max(0, int(max_dendrites)) + 1):
        n = params_with(base, perforated, d)
        rows.append({"dendrites": d, "params": n, "ratio": round(n / base, 3) if base else None})
    return rows


def top_k_projection(base: int, ordered: Sequence[PerforatedSize], max_dendrites: int) -> list[dict[str, Any]]:
    """Perforate only the last k modules in forward order (the rest tracked), k = 1..all: params per dendrite count."""
    rows = []
    for k in range(1, len(ordered) + 1):
        top = list(ordered[-k:])
        rows.append({
            "k": k,
            "modules": [m.path for m in top],
            "params": [params_with(base, top, d) for d in range(1, max(1, int(max_dendrites)) + 1)],
        })
    return rows
