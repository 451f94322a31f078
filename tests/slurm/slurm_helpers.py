"""Helpers of the SLURM tests: the launcher config they use, polling like the driver, asking the scheduler."""

from __future__ import annotations

import subprocess
import time

from pai_sweep.compose import compose
from pai_sweep.launchers.base import JobState

DONE = (JobState.FINISHED, JobState.FAILED, JobState.LOST)


def launcher_cfg(*overrides: str, name: str = "slurm"):
    """The composed launcher group, CPU-only and polling every second (the test cluster has no GPUs)."""
    return compose([f"launcher={name}", "launcher.gpus_per_trial=0", "launcher.cpus_per_trial=1",
                    "launcher.poll_interval=1", *overrides]).launcher


def wait_for(launcher, job, until=DONE, timeout: float = 240.0) -> tuple[JobState, list[JobState]]:
    """Poll like the driver does until a state in `until`; returns it and every state seen."""
    seen: list[JobState] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = launcher.poll(job)
        if not seen or seen[-1] != state:
            seen.append(state)
        if state in until:
            return state, seen
        time.sleep(0.3)
    raise AssertionError(f"job {job.info.get('job_id')} still {seen[-1] if seen else '?'} after {timeout}s; seen {seen}")


def slurm(*args: str) -> str:
    out = subprocess.run(list(args), capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, f"{' '.join(args)}: {out.stderr}"
    return out.stdout


def jobs_named(prefix: str) -> list[str]:
    """Job ids whose name starts with prefix, as the controller and accounting know them (no duplicates)."""
    text = slurm("sacct", "-X", "-P", "-n", "-D", "-S", "now-1hour", "-o", "JobID,JobName%60")
    return sorted({line.split("|")[0] for line in text.splitlines() if "|" in line and line.split("|")[1].startswith(prefix)})
