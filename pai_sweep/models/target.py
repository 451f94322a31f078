"""Import a dotted path (a user's `_target_`, a train.optimizer.type, a train.train_fn) through Hydra's own
lookup, and call a callable with the arguments it accepts (no torch here)."""

from __future__ import annotations

import inspect
import logging
from typing import Any, Callable

from hydra.utils import get_object

from pai_sweep.errors import ConfigError

_HYDRA_UTILS_LOG = logging.getLogger("hydra.utils")


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def locate(path: str) -> Any:
    """The object at a dotted path ("pkg.module.Name", nested attributes too), found as Hydra finds a `_target_`.

    A missing last name of an importable module raises AttributeError("module 'pkg.module' has no attribute
    'Name'"); any other failure (the module is not installed, the user's module raises on import, "a..b")
    raises ImportError with the import's own reason on one line. Hydra's multi-line message, and the error
    it logs before raising, are left out: the caller's own one-line error says it.
    """
    disabled = _HYDRA_UTILS_LOG.disabled
    _HYDRA_UTILS_LOG.disabled = True
    try:
        return get_object(path)
    except ValueError as exc:  # an empty part ("a..b"): Hydra refuses relative imports
        raise ImportError(_one_line(exc)) from exc
    except ImportError as exc:
        cause = exc.__cause__ or exc  # Hydra chains the import's own exception
        parent, _, name = path.rpartition(".")
        if isinstance(cause, ModuleNotFoundError) and cause.name == path:  # `parent` imported, `name` is not in it
            raise AttributeError(f"module '{parent}' has no attribute '{name}'") from exc
        raise ImportError(_one_line(cause)) from exc
    finally:
        _HYDRA_UTILS_LOG.disabled = disabled


def import_target(path: Any, key: str, error: type[Exception], example: str) -> Callable[..., Any]:
    """The callable at `path` ("pkg.module.Name"); `error` with one line naming `key` when it is not one."""
    if not isinstance(path, str) or "." not in path.strip(". "):
        raise error(f"{key}={path!r} is not an import path: give one like {example}")
    try:
        target = locate(path)
    except AttributeError as exc:
        raise error(f"{key}={path!r}: {exc}; give an importable path like {example}") from exc
    except ImportError as exc:
        raise error(f"{key}={path!r} cannot be imported ({exc}): give an importable path like {example}") from exc
    if not callable(target):
        raise error(f"{key}={path!r} is a {type(target).__name__}, not a callable; give a class or function like {example}")
    return target


def accepted(fn: Callable[..., Any], offered: dict[str, Any]) -> dict[str, Any]:
    """The subset of `offered` that `fn` takes by name (all of it when fn has **kwargs)."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):  # builtins without a signature: offer nothing optional
        return {}
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return dict(offered)
    names = {p.name for p in params if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)}
    return {k: v for k, v in offered.items() if k in names}


def resolve_class(path: str, default_module: str, key: str) -> type:
    """A class from a bare name in `default_module` (e.g. Adam) or a full import path (pkg.mod.Class)."""
    module_name, _, name = str(path).rpartition(".")
    try:
        return locate(f"{module_name or default_module}.{name}")
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"{key}={path!r} cannot be imported ({exc}): use a {default_module} class name or a full import path") from exc


def resolve_callable(path: str, key: str) -> Callable:
    if not str(path).rpartition(".")[0]:
        raise ConfigError(f"{key}={path!r} must be a full import path, e.g. mypkg.train.my_train_fn")
    try:
        return locate(str(path))
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"{key}={path!r} cannot be imported ({exc}): check the module path and that it is installed") from exc
