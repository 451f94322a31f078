"""Helpers for the check tests: tiny configs, and the perforatedai crash logs produced once per session."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
CRASH_CASES = ("dims", "unwrapped", "norm", "knob", "dataparallel", "no_gradient", "switch_mode", "score", "reload")
# Tiny runs: a few hundred digits, small batches, CPU.
TINY = ["data.limit=120", "train.batch_size=32", "train.device=cpu", "tracking=off"]


@pytest.fixture(scope="module")
def nets_on_path():
    # model._target_=check_nets.X must import here and in the worker subprocess
    with pytest.MonkeyPatch.context() as mp:
        mp.syspath_prepend(str(HERE))
        mp.setenv("PYTHONPATH", os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]))
        yield


@pytest.fixture(autouse=True)
def _nets_importable(nets_on_path):
    pass


def _tiny(*overrides: str):
    from pai_sweep.compose import compose

    return compose([*TINY, *overrides])


@pytest.fixture(scope="session")
def tiny():
    """tiny(*overrides) -> the composed config of a tiny CPU run."""
    return _tiny


@pytest.fixture(scope="session")
def crash_logs(tmp_path_factory) -> dict[str, tuple[int, str]]:
    """case -> (exit code, output) of each real perforatedai failure (one process, a fork per case)."""
    folder = tmp_path_factory.mktemp("pai_crashes")
    subprocess.run(
        [sys.executable, str(HERE / "pai_crashes.py"), "all", str(folder)], stdin=subprocess.DEVNULL,
        check=True, timeout=600, env={**os.environ, "MPLBACKEND": "Agg"},
    )
    codes = json.loads((folder / "codes.json").read_text())
    return {case: (codes[case], (folder / f"{case}.log").read_text(errors="replace")) for case in CRASH_CASES}
