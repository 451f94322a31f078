"""The run spec: what one trial runs, as the driver writes it to run.yaml and the worker reads it.

The driver composes and validates the whole config, then writes the run groups with `run_dict`
(improvement_threshold as its list). The worker reads run.yaml with `typed_run` (each group onto its
schema, unknown keys and wrong types fail) and `RunSpec.of`; each part then takes its own group.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Mapping

from omegaconf import DictConfig, OmegaConf

from pai_sweep.errors import ConfigError
from pai_sweep.schema.data import DataConfig
from pai_sweep.schema.dendrites import DendritesSpec, threshold_schedule
from pai_sweep.schema.downsize import DownsizeConfig
from pai_sweep.schema.model import ModelConfig
from pai_sweep.schema.train import TrainConfig


@dataclass
class RunSpec:
    model: ModelConfig = field(default_factory=ModelConfig)
    downsize: DownsizeConfig = field(default_factory=DownsizeConfig)
    dendrites: DendritesSpec = field(default_factory=DendritesSpec)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    @classmethod
    def of(cls, node: DictConfig) -> "RunSpec":
        """The typed spec from a `typed_run` node (the dataclasses themselves, not an OmegaConf view)."""
        return OmegaConf.to_object(node)

    def to_dict(self) -> dict[str, dict]:
        """The groups as plain values, as run.yaml holds them."""
        return {g: dataclasses.asdict(getattr(self, g)) for g in RUN_GROUPS}


# The parts of a run a worker needs (the rest belongs to the driver), in run.yaml's order.
RUN_GROUPS = tuple(f.name for f in dataclasses.fields(RunSpec))


def run_dict(cfg: Any) -> dict[str, Any]:
    """A composed config's run groups as run.yaml holds them: plain values, improvement_threshold its list."""
    out = {g: OmegaConf.to_container(cfg[g], resolve=True) for g in RUN_GROUPS}
    if "improvement_threshold" in out["dendrites"]:
        out["dendrites"]["improvement_threshold"] = threshold_schedule(out["dendrites"]["improvement_threshold"])
    return out


def typed_run(raw: Mapping[str, Any], where: Any) -> DictConfig:
    """run.yaml's groups (missing ones: defaults; other top-level keys ignored) merged onto RunSpec.

    Unknown keys, wrong types and a bad improvement_threshold raise ConfigError naming `where`.
    """
    groups = {}
    for g in RUN_GROUPS:
        value = raw.get(g)
        value = OmegaConf.to_container(value, resolve=True) if hasattr(value, "_metadata") else value
        if not isinstance(value, (dict, type(None))):
            raise ConfigError(f"{where}: {g} must be a mapping of its keys, not {value!r}")
        groups[g] = dict(value or {})
    if "improvement_threshold" in groups["dendrites"]:
        groups["dendrites"]["improvement_threshold"] = threshold_schedule(groups["dendrites"]["improvement_threshold"])
    try:
        return OmegaConf.merge(OmegaConf.structured(RunSpec), groups)
    except Exception as exc:  # OmegaConf's ValidationError / ConfigKeyError
        raise ConfigError(f"{where}: {' '.join(str(exc).split())}") from exc
