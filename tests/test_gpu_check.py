"""scripts/gpu_check.sh refuses, with one line and exit 2, to check a machine that has no GPU it can use
(the GPU run itself needs a GPU machine; docs/slurm.md and README say it has not run on one here)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "gpu_check.sh"


def _run(tmp_path: Path, nvidia_smi: str | None, **env: str) -> subprocess.CompletedProcess:
    bin_dir = tmp_path / "bin"  # only what the script needs before it decides: no nvidia-smi unless given
    bin_dir.mkdir()
    for tool in ("dirname", "grep", "tr", "head"):
        (bin_dir / tool).symlink_to(shutil.which(tool))
    if nvidia_smi is not None:
        (bin_dir / "nvidia-smi").write_text("#!/bin/sh\n" + nvidia_smi)
        (bin_dir / "nvidia-smi").chmod(0o755)
    clean = {k: v for k, v in os.environ.items() if k != "CUDA_VISIBLE_DEVICES"}
    return subprocess.run([shutil.which("bash"), str(SCRIPT)], capture_output=True, text=True, timeout=60,
                          env={**clean, "PATH": str(bin_dir), **env})


@pytest.mark.parametrize(
    "nvidia_smi, env, reason",
    [
        (None, {}, "gpu_check: no GPU: nvidia-smi is not on PATH"),
        ("echo 'No devices were found'\n", {}, "gpu_check: no GPU: nvidia-smi -L lists none (No devices were found)"),
        ("echo 'GPU 0: NVIDIA H200 (UUID: GPU-1)'\n", {"CUDA_VISIBLE_DEVICES": ""}, "hides every GPU (unset it)"),
        ("echo 'GPU 0: NVIDIA H200 (UUID: GPU-1)'\n", {"PAI_SWEEP_PYTHON": "false"},
         "gpu_check: no GPU for torch: nvidia-smi lists 1 GPU(s) but torch.cuda.is_available() is False"),
    ],
)
def test_no_usable_gpu_is_one_line_and_exit_2(tmp_path, nvidia_smi, env, reason):
    out = _run(tmp_path, nvidia_smi, **env)
    assert out.returncode == 2, out.stderr
    assert out.stderr.count("\n") == 1 and reason in out.stderr, out.stderr
    assert "Traceback" not in out.stderr and not out.stdout
