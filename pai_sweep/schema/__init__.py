"""Dataclass schemas for every config group, registered in Hydra's ConfigStore.

The root `Config` is the first entry of conf/config.yaml's defaults list, so every YAML
option is merged into a typed node: an unknown key or a wrong type fails at compose time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore

from pai_sweep.schema.data import DataConfig
from pai_sweep.schema.dendrites import DendritesConfig, DendritesSpec
from pai_sweep.schema.downsize import DownsizeConfig
from pai_sweep.schema.model import ModelConfig
from pai_sweep.schema.run import RUN_GROUPS, RunSpec
from pai_sweep.schema.runtime import LauncherConfig, TrackingConfig
from pai_sweep.schema.sweep import ObjectiveConfig, SweepConfig
from pai_sweep.schema.train import OptimizerConfig, SchedulerConfig, TrainConfig

__all__ = [
    "Config",
    "DataConfig",
    "DendritesConfig",
    "DendritesSpec",
    "DownsizeConfig",
    "LauncherConfig",
    "ModelConfig",
    "ObjectiveConfig",
    "OptimizerConfig",
    "RUN_GROUPS",
    "RunSpec",
    "SchedulerConfig",
    "SweepConfig",
    "TrackingConfig",
    "TrainConfig",
    "register",
    "valid_keys",
]


@dataclass
class Config(RunSpec):
    """The whole composed config: the run groups (RunSpec's, dendrites as composed: improvement_threshold
    a number or a list) and the driver's own groups."""

    dendrites: DendritesConfig = field(default_factory=DendritesConfig)
    sweep: SweepConfig = field(default_factory=SweepConfig)
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    launcher: LauncherConfig = field(default_factory=LauncherConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)


def register() -> None:
    """Put the root schema in the ConfigStore as `schema` (conf/config.yaml lists it first)."""
    from omegaconf import OmegaConf

    node = OmegaConf.structured(Config)
    # The user's own dicts (sweep.space, launcher.additional_parameters, optimizer args, kwargs, extra knobs, ...)
    # take new keys from an override ('sweep.space={model.width_mult:{...}}'), which Hydra's struct mode would refuse
    # with advice that does not work; every other key stays closed to typos.
    for path in free_dicts(Config):
        OmegaConf.set_struct(OmegaConf.select(node, path), False)
    ConfigStore.instance().store(name="schema", node=node)


def free_dicts(schema: type, prefix: str = "") -> list[str]:
    """Dotted paths of the dict-typed fields (free-form: any key) in a dataclass schema, nested ones included."""
    import dataclasses
    import typing

    out = []
    for f in dataclasses.fields(schema):
        kind = typing.get_type_hints(schema)[f.name]
        if dataclasses.is_dataclass(kind):
            out += free_dicts(kind, f"{prefix}{f.name}.")
        elif typing.get_origin(kind) is dict:
            out.append(f"{prefix}{f.name}")
    return out


def valid_keys() -> list[str]:
    """Every key the config schema has (Config, which every composed config is merged into), for "did you mean"
    (overrides.did_you_mean). Read from the dataclasses, not by composing: the same keys, without a second compose."""
    import dataclasses

    out: list[str] = []

    def walk(cls: Any, prefix: str) -> None:
        for f in dataclasses.fields(cls):
            name = f"{prefix}{f.name}"
            out.append(name)
            inner = f.default_factory if f.default_factory is not dataclasses.MISSING else None  # type: ignore[misc]
            if isinstance(inner, type) and dataclasses.is_dataclass(inner):
                walk(inner, name + ".")

    walk(Config, "")
    return out
