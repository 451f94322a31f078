"""pai-sweep: run the PerforatedAI loop (train, analyse, change the knobs, train again) as an Optuna sweep.

The public API, imported lazily so `pai-sweep --help` never pays for torch:

    from pai_sweep.compose import compose        # compose(["+recipe=quick_cpu"]) -> the full config
    from pai_sweep import run_sweep              # run_sweep(cfg) -> the sweep's summary
    from pai_sweep import PAISession             # what a train.train_fn receives (docs/custom_loop.md)
    from pai_sweep import analyze, read_history  # a PerforatedAI output folder -> findings (docs/analysis.md)
    from pai_sweep import run_check              # the integration check (docs/check.md)
"""

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "run_sweep": "pai_sweep.driver",
    "PAISession": "pai_sweep.training",
    "analyze": "pai_sweep.analysis",
    "read_history": "pai_sweep.analysis",
    "run_check": "pai_sweep.check",
}
__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'pai_sweep' has no attribute {name!r}")
