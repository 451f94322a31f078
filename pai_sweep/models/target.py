"""Import a user's `_target_` callable and call it with the arguments it accepts (no torch here)."""

from __future__ import annotations

import importlib
import inspect
from typing import Any, Callable


def import_target(path: Any, key: str, error: type[Exception], example: str) -> Callable[..., Any]:
    """The callable at `path` ("pkg.module.Name"); `error` with one line naming `key` when it is not one."""
    if not isinstance(path, str) or "." not in path.strip(". "):
        raise error(f"{key}={path!r} is not an import path: give one like {example}")
    module_name, _, attr = path.rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # ImportError, or whatever the user's module raises on import
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise error(f"{key}={path!r} cannot be imported ({reason}): give an importable path like {example}") from exc
    target = getattr(module, attr, None)
    if target is None:
        raise error(f"{key}={path!r}: module '{module_name}' has no attribute '{attr}'; give an importable path like {example}")
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
