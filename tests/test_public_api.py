"""The curated public API resolves, and importing the package (the CLI's first step) does not import torch."""

from __future__ import annotations

import inspect
import subprocess
import sys

import pai_sweep


def test_public_names_resolve():
    for name in pai_sweep.__all__:
        assert getattr(pai_sweep, name) is not None, name
    assert inspect.isclass(pai_sweep.PAISession) and hasattr(pai_sweep.PAISession, "report")
    assert inspect.isfunction(pai_sweep.run_sweep) and inspect.isfunction(pai_sweep.analyze)


def test_package_import_stays_light():
    code = "import sys, pai_sweep, pai_sweep.cli; print('torch' in sys.modules, 'perforatedai' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False"]
