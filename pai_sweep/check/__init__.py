"""`pai-sweep check`: will this model work with PerforatedAI as configured, and what will it cost?

    result = run_check(cfg, out_dir)          # CheckResult(ok, verdict, ...); writes out_dir/check.json
    d = diagnose(log_text, exc)               # Diagnosis(cause, explanation, fix) of a failed trial, or None
    dendrites = resolve_auto_preset(run_cfg)  # dendrites=auto -> concrete module choices and dims

Parts: inspect (what gets perforated/tracked/left unwrapped, and output_dimensions from one
forward pass), cost (parameter projection), verdict (direction, device, loop, capacity test),
auto (which built-in preset fits, and the `auto` preset), diagnose (known crash signatures). Only `perforate` and
`preflight` touch perforatedai; this package never imports it. Names resolve lazily, so
`from pai_sweep.check import diagnose` does not import torch. This is the public API; the
package's own modules import the submodule they use.
"""

from __future__ import annotations

import importlib
from typing import Any

# Eager (no torch): binds the function, not the submodule of the same name, to `pai_sweep.check.diagnose`.
from pai_sweep.check.diagnose import Diagnosis, diagnose

_EXPORTS = {
    "CheckResult": "pai_sweep.check.verdict",
    "run_check": "pai_sweep.check.verdict",
    "resolve_auto_preset": "pai_sweep.check.auto",
}

__all__ = sorted([*_EXPORTS, "Diagnosis", "diagnose"])


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'pai_sweep.check' has no attribute {name!r}")
