"""Every value a sweep records is a value the trial used: searched keys and overrides must act.

Each part of pai-sweep that reads run-config fields declares, next to its own code, which
fields it reads under which option (a `Reads`): the downsizing (models/downsize.py), the
model builders (models/__init__.py, from zoo.py / vision.py / build.py), the dendrites switch and
the plain model (perforate.py, worker.py), the built-in training loop (train_loop.py). One check
walks the keys of `sweep.space` and the command-line overrides against those declarations,
so `downsize.width_mult` searched under `downsize=none` stops before anything runs:

    sweep.space.downsize.width_mult: downsize=none ignores downsize.width_mult; add downsize=width,
    or search downsize.name and add when: {downsize.name: [family, width, depth]}

No torch here; a declaration imports its module when a key it governs is checked.
"""

from __future__ import annotations

import importlib
import itertools
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from pai_sweep.errors import ConfigError, SweepError
from pai_sweep.reads import Reads  # declared in a leaf so the worker side never imports this module

# Where the declarations live (module:attribute, each a Reads); checked in this order.
CONSUMERS = (
    "pai_sweep.models.downsize:READS",
    "pai_sweep.models:READS",
    "pai_sweep.worker:ENABLED_READS",
    "pai_sweep.worker:AUTO_PRESET_READS",
    "pai_sweep.perforate:SWITCH_READS",
    "pai_sweep.train_loop:READS",
)
MAX_COMBINATIONS = 512  # option combinations a search space may enumerate


@dataclass(frozen=True)
class Ignored:
    """A key the trial would record but not use, and why."""

    key: str
    selector: str
    value: Any
    alternatives: tuple  # selector values under which the key acts
    hint: str | None = None

    @property
    def why(self) -> str:
        return f"{option(self.selector, self.value)} ignores {self.key}"

    @property
    def fix(self) -> str:
        if self.hint:
            return self.hint
        if self.alternatives:
            return "use " + " or ".join(option(self.selector, v) for v in self.alternatives[:3])
        return f"remove {self.key}"


def option(selector: str, value: Any) -> str:
    """How a user writes that choice: `downsize=none` for a group's name, else `key=value`."""
    group, _, field = selector.partition(".")
    shown = "null" if value is None else str(value).lower() if isinstance(value, bool) else value
    return f"{group}={shown}" if field == "name" else f"{selector}={shown}"


def field_key(key: str) -> str:
    """`train.optimizer.args.lr` -> `train.optimizer`: declarations speak of a group's fields."""
    return ".".join(key.split(".")[:2])


def _declarations() -> list[Reads]:
    out = []
    for path in CONSUMERS:
        module, _, attr = path.partition(":")
        out.append(getattr(importlib.import_module(module), attr))
    return out


def _get(cfg: Any, key: str) -> Any:
    from omegaconf import OmegaConf

    return OmegaConf.select(cfg, key, default=None)


def _with(cfg: Any, key: str, value: Any) -> Any:
    from pai_sweep.search_space import apply_params

    return apply_params(cfg, {key: value})


def ignored(cfg: Any, key: str) -> Ignored | None:
    """Why `key` would not act on a trial run with `cfg`, or None when it acts."""
    field = field_key(key)
    for decl in _declarations():
        if field == decl.selector or not decl.governs(field):
            continue
        if decl.acts(field, cfg):
            continue
        current = _get(cfg, decl.selector)
        others = tuple(v for v in decl.choices if v != current and decl.acts(field, _with(cfg, decl.selector, v)))
        hint = decl.hint(field, cfg) if decl.hint else None
        return Ignored(key, decl.selector, current, others, hint)
    return None


def selectors() -> set[str]:
    return {d.selector for d in _declarations()}


# ---------------------------------------------------------------- the checks


def check_space(space: Any, cfg: Any) -> None:
    """SweepError naming the first searched key that some searched combination of options ignores.

    `space` is a parsed SearchSpace. Every combination of the searched options (downsize.name,
    model.name, dendrites.switch_mode, ...) under which a key is searched (its `when`) must use it.
    """
    from optuna.distributions import CategoricalDistribution

    chosen = [p for p in space if p.key in selectors() and isinstance(p.distribution, CategoricalDistribution)]
    values = [[space.decode({p.key: c})[p.key] for c in p.distribution.choices] for p in chosen]
    combos = list(itertools.islice(itertools.product(*values), MAX_COMBINATIONS))
    for combo in combos:
        params = dict(zip((p.key for p in chosen), combo))
        run = _apply(cfg, params)
        for p in space:
            if any(k in params and params[k] not in allowed for k, allowed in p.when.items()):
                continue  # not searched under this combination
            found = ignored(run, p.key)
            if found is None:
                continue
            fix = found.fix
            if found.selector in space:
                reading = [v for v in found.alternatives if v in _choices(space, found.selector)]
                if reading:
                    fix = f"add when: {{{found.selector}: [{', '.join(_plain(v) for v in reading)}]}} to it"
            elif found.alternatives and not found.hint:
                fix = f"{fix}, or search {found.selector} and add when: {{{found.selector}: [{', '.join(_plain(v) for v in found.alternatives)}]}}"
            raise SweepError(f"sweep.space.{p.key}: {found.why}, so those trials would record values they never used; {fix}")


def check_params(run_cfg: Any, params: Mapping[str, Any]) -> None:
    """ConfigError when one of a trial's searched values does not act on it (the driver's last check per trial)."""
    for key in params:
        found = ignored(run_cfg, key)
        if found is not None:
            raise ConfigError(f"{key}={_plain(params[key])} would not act on this trial: {found.why}; {found.fix}")


def check_overrides(cfg: Any, overrides: Iterable[str]) -> None:
    """ConfigError for a command-line `key=value` that the options chosen ignore.

    A key whose deciding option is searched in sweep.space is left to check_space (it acts in some trials).
    """
    searched = set((_get(cfg, "sweep.space") or {}).keys()) if _get(cfg, "sweep") is not None else set()
    for text in overrides:
        key, sep, value = str(text).lstrip("+").partition("=")
        if not sep or key.startswith("~") or "." not in key or key.split(".")[0] not in ("model", "downsize", "dendrites", "data", "train"):
            continue
        found = ignored(cfg, key)
        if found is not None and found.selector not in searched:
            raise ConfigError(f"{key}={value} does nothing: {found.why}; {found.fix}")


def _apply(cfg: Any, params: Mapping[str, Any]) -> Any:
    from pai_sweep.search_space import apply_params

    return apply_params(cfg, params) if params else cfg


def _choices(space: Any, key: str) -> list:
    p = space.by_key[key]
    return [space.decode({key: c})[key] for c in getattr(p.distribution, "choices", ())]


def _plain(value: Any) -> str:
    return "null" if value is None else str(value).lower() if isinstance(value, bool) else str(value)
