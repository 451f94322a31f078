"""`Reads`: what one part of a trial reads from the run config, declared next to its own code.

A leaf (no project import, no optuna): the worker side (worker, training, perforate, models)
declares its `Reads` here, and `pai_sweep.consumers` (driver side, which walks a search space)
checks them, so declaring one never pulls the sweep machinery into a trial process.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable


@dataclass(frozen=True)
class Reads:
    """What one consumer reads: whether a field it `governs` acts under a run config.

    selector: the key whose value decides (e.g. "downsize.name"); choices: the values it can take
    (the alternatives a fix suggests); governs(field): whether this consumer decides about a field
    key ("group.field"); acts(field, run_cfg): whether it reads that field under run_cfg;
    hint(field, run_cfg): a better fix than "use <selector>=<other value>", or None.
    """

    selector: str
    choices: tuple
    governs: Callable[[str], bool]
    acts: Callable[[str, Any], bool]
    hint: Callable[[str, Any], "str | None"] | None = None
