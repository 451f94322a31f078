"""Analysis test helpers: the copied real fixtures, a folder builder, and one real PerforatedAI run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from run_builder import CAPACITY_RUN, FIXTURES, HISTORY_RUN, write_run  # noqa: F401 - fixtures use them
PAI_RUN_SCRIPT = Path(__file__).with_name("pai_run.py")


@pytest.fixture
def build(tmp_path):
    """build(segments, **kw) -> a PerforatedAI-format folder under tmp_path (see run_builder.write_run)."""
    counter = iter(range(1000))

    def _build(segments, **kw):
        return write_run(tmp_path / f"run{next(counter)}", segments, **kw)

    return _build


@pytest.fixture(scope="session")
def real_pai_run(tmp_path_factory):
    """(folder, epochs run): PerforatedAI 3.2.9 training a tiny MLP on digits in its own process (~10 s)."""
    out = tmp_path_factory.mktemp("pai_real")
    proc = subprocess.run(
        [sys.executable, str(PAI_RUN_SCRIPT), str(out), "10"],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    epochs = int(proc.stdout.strip().splitlines()[-1].split(":")[1])
    return out / "pai", epochs
