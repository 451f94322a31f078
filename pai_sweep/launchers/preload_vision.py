"""What the warm worker server imports first when a sweep's trials use torchvision (its models, CIFAR or an
image folder): ~1 s of imports each forked trial would otherwise repeat. launchers/preload.py imports the rest
and freezes everything for the garbage collector; warm.plan_preload decides whether this module is needed.
If torchvision cannot be imported, the server goes on without it (multiprocessing ignores an ImportError
here) and the trial that needs it says what is wrong."""

import torchvision  # noqa: F401

import pai_sweep.data.folders  # noqa: F401
import pai_sweep.models.vision  # noqa: F401
