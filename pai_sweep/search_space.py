"""The declarative search space: `sweep.space` (dotted config key -> distribution) to Optuna and back.

A space entry looks like::

    dendrites.max_dendrites: {type: int, low: 0, high: 4}
    train.optimizer.args.lr: {type: float, low: 1e-4, high: 1e-1, log: true}
    dendrites.improvement_threshold: {type: categorical, choices: [[0.001, 0.0001, 0], 0.01]}
    downsize.width_mult: {type: float, low: 0.25, high: 1.0, step: 0.25, when: {downsize.name: width}}

Optuna stores only None/bool/int/float/str as categorical choices, so a list or dict choice
(an improvement_threshold schedule) is stored as its JSON string and decoded on the way out.
`params` below always means decoded values keyed by config key; `encode`/`decode` convert.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any, Mapping

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution

from pai_sweep.errors import SweepError

TYPES = ("int", "float", "categorical")
_FIELDS = {"type", "low", "high", "log", "step", "choices", "when"}
_MISSING = object()


@dataclass(frozen=True)
class Param:
    """One searched key: its Optuna distribution and the condition under which it is searched."""

    key: str
    distribution: BaseDistribution
    when: dict[str, list[Any]] = field(default_factory=dict)  # other key -> values that enable this one
    encoded: bool = False  # categorical choices stored as JSON strings

    def active(self, params: Mapping[str, Any]) -> bool:
        return all(k in params and params[k] in allowed for k, allowed in self.when.items())


def _plain(value: Any) -> Any:
    # OmegaConf containers -> python lists/dicts, so JSON and equality behave.
    try:
        from omegaconf import DictConfig, ListConfig, OmegaConf

        if isinstance(value, (DictConfig, ListConfig)):
            return OmegaConf.to_container(value, resolve=True)
    except ImportError:  # pragma: no cover - omegaconf ships with hydra
        pass
    return value


def _encode_choice(choice: Any, encoded: bool | None = None) -> Any:
    """A choice as Optuna stores it. In a space with any list/dict choice every choice is a JSON string
    ("[0.01, 0.001, 0.0]" and "0.0", never a string beside a float), so readers see one type."""
    if encoded is None:
        encoded = isinstance(choice, (list, tuple, dict))
    return json.dumps(choice, sort_keys=True) if encoded else choice


class SearchSpace:
    """An ordered set of `Param`s (conditions come after the keys they depend on)."""

    def __init__(self, params: list[Param]):
        self.params = params
        self.by_key = {p.key: p for p in params}

    def __iter__(self):
        return iter(self.params)

    def __contains__(self, key: str) -> bool:
        return key in self.by_key

    def __len__(self) -> int:
        return len(self.params)

    @property
    def keys(self) -> list[str]:
        return [p.key for p in self.params]

    def distributions(self, params: Mapping[str, Any] | None = None) -> dict[str, BaseDistribution]:
        """Distributions of the keys active for these params (all keys when params is None)."""
        if params is None:
            return {p.key: p.distribution for p in self.params}
        return {p.key: p.distribution for p in self.params if p.key in params}

    def encode(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Decoded values -> what Optuna stores (JSON strings for list/dict choices)."""
        out = {}
        for key, value in params.items():
            p = self.by_key.get(key)
            out[key] = _encode_choice(_plain(value), True) if p is not None and p.encoded else _plain(value)
        return out

    def decode(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """What Optuna stored -> the values a run config takes."""
        out = {}
        for key, value in params.items():
            p = self.by_key.get(key)
            if p is not None and p.encoded and isinstance(value, str):
                try:
                    value = json.loads(value)
                except ValueError:
                    pass  # a plain string choice stored by an older version
            out[key] = value
        return out

    def fit(self, key: str, value: Any) -> Any:
        """`value` moved inside key's distribution (clipped, rounded to step/int); _MISSING when it cannot be."""
        p = self.by_key[key]
        dist = p.distribution
        if isinstance(dist, CategoricalDistribution):
            want = _plain(value)
            for choice in dist.choices:
                have = self.decode({key: choice})[key]
                if have == want or (isinstance(have, float) and isinstance(want, (int, float)) and not isinstance(want, bool)
                                    and math.isclose(have, want)):
                    return have
            return _MISSING
        try:
            number = float(value)
        except (TypeError, ValueError):
            return _MISSING
        if not math.isfinite(number):
            return _MISSING
        number = min(max(number, dist.low), dist.high)
        step = getattr(dist, "step", None)
        if step:
            number = dist.low + round((number - dist.low) / step) * step
            number = min(number, dist.high)
        if isinstance(dist, IntDistribution):
            return int(round(number))
        return float(number)

    def contains(self, params: Mapping[str, Any]) -> bool:
        enc = self.encode(params)
        for key, value in enc.items():
            if key not in self.by_key:
                return False
            dist = self.by_key[key].distribution
            try:
                if not dist._contains(dist.to_internal_repr(value)):
                    return False
            except (ValueError, TypeError):
                return False
        return True

    def complete(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Only the keys active under these params (conditional keys whose condition fails are dropped)."""
        out: dict[str, Any] = {}
        for p in self.params:
            if p.key in params and p.active(out):
                out[p.key] = params[p.key]
        return out


def _fail(key: str, problem: str) -> SweepError:
    return SweepError(f"sweep.space.{key}: {problem}")


def _number(key: str, spec: Mapping[str, Any], name: str) -> float:
    value = spec.get(name)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _fail(key, f"'{name}' must be a number, got {value!r} (e.g. {{type: float, low: 0.001, high: 0.1}})")
    return value


def _distribution(key: str, spec: Mapping[str, Any]) -> tuple[BaseDistribution, bool]:
    kind = spec.get("type")
    if kind not in TYPES:
        raise _fail(key, f"type={kind!r} is not known; valid types: {', '.join(TYPES)}")
    if kind == "categorical":
        choices = spec.get("choices")
        if not isinstance(choices, (list, tuple)) or not choices:
            raise _fail(key, "categorical needs a non-empty 'choices' list, e.g. {type: categorical, choices: [a, b]}")
        encoded = any(isinstance(c, (list, tuple, dict)) for c in choices)
        stored = [_encode_choice(c, encoded) for c in choices]
        if len(set(map(repr, stored))) != len(stored):
            raise _fail(key, f"choices {list(choices)} repeat a value; list each choice once")
        return CategoricalDistribution(stored), encoded
    if "choices" in spec:
        raise _fail(key, f"'choices' belongs to type categorical, not {kind}")
    low, high = _number(key, spec, "low"), _number(key, spec, "high")
    if low > high:
        raise _fail(key, f"low={low} is above high={high}; swap them")
    log, step = bool(spec.get("log", False)), spec.get("step")
    if log and step is not None:
        raise _fail(key, "use either log: true or step, not both")
    if log and low <= 0:
        raise _fail(key, f"log: true needs low > 0, got low={low}")
    if step is not None and (isinstance(step, bool) or not isinstance(step, (int, float)) or step <= 0):
        raise _fail(key, f"step={step!r} must be a number > 0")
    if kind == "int":
        if int(low) != low or int(high) != high or (step is not None and int(step) != step):
            raise _fail(key, f"type int needs whole numbers, got low={low} high={high} step={step}; use type: float")
        return IntDistribution(int(low), int(high), log=log, step=int(step or 1)), False
    return FloatDistribution(float(low), float(high), log=log, step=None if step is None else float(step)), False


def parse_space(space: Mapping[str, Any], config: Any | None = None) -> SearchSpace:
    """Check `sweep.space` and build it; `config` (the composed config) makes unknown keys fail.

    Raises SweepError naming the key, the problem and the fix, before anything runs.
    """
    space = _plain(space) or {}
    if not isinstance(space, Mapping) or not space:
        raise SweepError(
            "sweep.space is empty: name at least one config key to search, "
            "e.g. sweep.space={dendrites.max_dendrites:{type:int,low:0,high:3}}"
        )
    parsed: dict[str, Param] = {}
    for key, spec in space.items():
        if not isinstance(spec, Mapping):
            raise _fail(key, f"expected a mapping like {{type: int, low: 1, high: 4}}, got {spec!r}")
        unknown = set(spec) - _FIELDS
        if unknown:
            raise _fail(key, f"unknown field(s) {sorted(unknown)}; valid fields: {', '.join(sorted(_FIELDS))}")
        if config is not None:
            from omegaconf import OmegaConf

            if key.split(".")[0] in ("sweep", "objective", "launcher", "tracking"):
                raise _fail(key, "only run settings (model, downsize, dendrites, data, train) can be searched")
            if OmegaConf.select(config, key, default=_MISSING, throw_on_missing=False) is _MISSING:
                raise _fail(key, "is not a key of the composed config; check the spelling (e.g. dendrites.max_dendrites)")
        dist, encoded = _distribution(key, spec)
        when = spec.get("when") or {}
        if not isinstance(when, Mapping):
            raise _fail(key, f"when must map another searched key to a value, got {when!r}")
        conds = {k: list(v) if isinstance(v, (list, tuple)) else [v] for k, v in when.items()}
        parsed[key] = Param(key, dist, conds, encoded)
    for p in parsed.values():
        for other, allowed in p.when.items():
            if other == p.key:
                raise _fail(p.key, "its 'when' names itself")
            if other not in parsed:
                raise _fail(p.key, f"'when' names {other}, which is not in sweep.space; add it or drop the condition")
            odist = parsed[other].distribution
            if isinstance(odist, CategoricalDistribution):
                bad = [v for v in allowed if _encode_choice(v, parsed[other].encoded) not in odist.choices]
                if bad:
                    raise _fail(p.key, f"'when' {other} in {bad} can never happen; {other} choices are {list(odist.choices)}")
    return SearchSpace(_ordered(parsed))


def _ordered(parsed: dict[str, Param]) -> list[Param]:
    # Conditions refer to other keys: put each key after the keys it depends on.
    out: list[Param] = []
    done: set[str] = set()
    visiting: set[str] = set()

    def visit(key: str) -> None:
        if key in done:
            return
        if key in visiting:
            raise _fail(key, "its 'when' conditions form a cycle; make the chain end at an unconditional key")
        visiting.add(key)
        for other in parsed[key].when:
            visit(other)
        visiting.discard(key)
        done.add(key)
        out.append(parsed[key])

    for key in parsed:
        visit(key)
    return out


def suggest(trial: optuna.trial.BaseTrial, space: SearchSpace) -> dict[str, Any]:
    """Ask the trial for every active key (works with Trial and FixedTrial); decoded values."""
    params: dict[str, Any] = {}
    for p in space:
        if not p.active(params):
            continue
        d = p.distribution
        if isinstance(d, CategoricalDistribution):
            value = trial.suggest_categorical(p.key, d.choices)
        elif isinstance(d, IntDistribution):
            value = trial.suggest_int(p.key, d.low, d.high, step=d.step, log=d.log)
        else:
            value = trial.suggest_float(p.key, d.low, d.high, step=d.step, log=d.log)
        params[p.key] = space.decode({p.key: value})[p.key]
    return params


def to_overrides(params: Mapping[str, Any]) -> dict[str, Any]:
    """Dotted keys -> a nested dict that merges onto the run config."""
    nested: dict[str, Any] = {}
    for key, value in params.items():
        node = nested
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = _plain(value)
    return nested


def apply_params(config: Any, params: Mapping[str, Any]) -> Any:
    """A copy of the (OmegaConf) config with each dotted key set to the trial's value."""
    from omegaconf import OmegaConf

    cfg = config.copy()
    for key, value in params.items():
        OmegaConf.update(cfg, key, _plain(value), merge=False, force_add=False)
    return cfg


MISSING = _MISSING
