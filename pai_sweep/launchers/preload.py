"""What the warm worker server (launchers/warm.py) imports once, so a forked trial imports nothing heavy.

Everything here is what a worker imports anyway: torch (with torch._dynamo, which the first optimizer
imports: ~0.8-1.5 s here, every trial), PerforatedAI's modules (the package's
__init__ imports none of them), pandas (the library's CSVs), scikit-learn (the digits data),
matplotlib's Agg backend, and pai-sweep's worker modules; torchvision (~1 s of the ~3.4 s) only when
the sweep's models or data use it (preload_vision.py, imported first; warm.plan_preload decides).
Importing them configures nothing:
PerforatedAI's config singleton is built with its defaults and reads no file until a trial uses it
(in the trial's folder), so a forked child starts exactly like a fresh process. The library's
import-time line goes to a buffer, not to the driver's terminal; a module that fails to import is
left for the trial to import (and report) itself. The imported objects are then frozen out of the
garbage collector's sight (gc.freeze), so a child's collections do not touch the parent's pages.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import io

MODULES = (
    "torch", "torch._dynamo", "matplotlib.pyplot", "matplotlib.backends.backend_agg", "pandas", "sklearn.datasets",
    "safetensors.torch", "perforatedai", "perforatedai.globals_perforatedai", "perforatedai.utils_perforatedai",
    "perforatedai.tracker_perforatedai",
    "pai_sweep.worker", "pai_sweep.training", "pai_sweep.train_loop", "pai_sweep.perforate", "pai_sweep.models", "pai_sweep.models.build",
    "pai_sweep.data", "pai_sweep.data.loaders", "pai_sweep.data.digits", "pai_sweep.task", "pai_sweep.validate",
    "sklearn.model_selection", "pyarrow", "PIL.Image", "PIL.PngImagePlugin",
)

with contextlib.redirect_stdout(io.StringIO()):
    for _name in MODULES:
        try:
            importlib.import_module(_name)
        except Exception:  # noqa: BLE001 - the trial imports it again and says what is wrong
            pass
# Everything imported so far never needs collecting: out of the collector's sight, a forked child's garbage
# collections do not write to (and so copy) the pages of these objects.
gc.collect()
gc.freeze()
