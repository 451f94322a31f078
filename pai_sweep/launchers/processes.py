"""One process runner for worker processes: start one for a trial folder, poll it, wait with a timeout, stop its
process group, read its result.

The local launcher, `pai-sweep run` and the capacity test (preflight.py) run their workers through `WorkerRun`;
the SLURM launcher's job (launchers/slurm.py WorkerJob) starts and stops its worker with the same helpers, and
reads pids and log tails with them. A worker runs in its own process group (spawn.spawn_worker, or a child of
the warm server, launchers/warm.py spawn_warm: the caller picks the start), so stopping it stops anything it
started too. No torch, no submitit: this module only handles processes and the trial folder's files.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any, Callable, Iterable

from pai_sweep.launchers.exits import pid_alive  # noqa: F401 - re-exported: where launchers and tests find it
from pai_sweep.spawn import spawn_worker
from pai_sweep.trial_files import RESULT, TrialResult, read_result

GRACE_S = 3.0  # seconds between SIGTERM and SIGKILL when a worker is stopped
TAIL_LINES = 8
Spawn = Callable[..., Any]  # (trial_dir, env=, log_path=, ...) -> a subprocess.Popen or a warm.WarmProcess (pid, poll, wait)


def cwd_of(pid: int) -> str | None:
    """The process's working directory (a worker's is its trial folder), None when unknown."""
    try:
        return os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        return None


def cmdline_of(pid: int) -> str:
    """The process's command line, its arguments joined by spaces; OSError when it cannot be read."""
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")


class Pid:
    """The part of subprocess.Popen that stop_group uses, for a process this one did not start."""

    def __init__(self, pid: int):
        self.pid = pid

    def poll(self) -> int | None:
        return None if pid_alive(self.pid) else 0

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while pid_alive(self.pid):
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(f"worker pid {self.pid}", timeout)
            time.sleep(0.05)
        return 0


def _ended(proc: Any, timeout: float | None) -> bool:
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        return False
    return True


def stop_group(proc: Any, grace: float = GRACE_S, kill_wait: float | None = GRACE_S) -> None:
    """SIGTERM the process group `proc` leads, SIGKILL it when it has not ended `grace` s later (grace=0: SIGKILL
    at once), then wait up to `kill_wait` s for it (None: until it ends). The group is signalled even when its
    leader has ended: anything the worker started goes too."""
    try:
        _signal_group(proc, grace, kill_wait)
    finally:
        poll = getattr(proc, "poll", None)  # a Popen (or a kept child) collects its exit status: no zombie left behind;
        if poll is not None:                # it never blocks, also while another thread holds the reaping lock
            poll()


def _signal_group(proc: Any, grace: float, kill_wait: float | None) -> None:
    signals = [(signal.SIGTERM, grace)] if grace > 0 else []
    for sig, wait in [*signals, (signal.SIGKILL, kill_wait)]:
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            return
        # by pid, not proc.wait: a Popen's wait takes its reaping lock, which a main thread blocked in that wait holds
        # (a SLURM job's preemption handler stops the worker from inside it); an ended, unreaped leader counts as gone
        if _ended(Pid(proc.pid), wait):
            if sig != signal.SIGKILL:  # the leader left on SIGTERM; what it started and ignored SIGTERM goes too
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            return


def ask_to_stop(pid: int) -> bool:
    """SIGUSR1: the worker ends its epoch, saves its resume point and exits (training.request_stop). False when the
    signal could not be sent."""
    try:
        os.kill(pid, signal.SIGUSR1)
    except OSError:
        return False
    return True


def wait_gone(pids: Iterable[int], seconds: float) -> None:
    """Return once none of `pids` runs, or after `seconds`."""
    pids = list(pids)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and any(pid_alive(p) for p in pids):
        time.sleep(0.05)


def tail(path: str | Path, lines: int = TAIL_LINES) -> str:
    """The last lines of a log as one line (submitit's own INFO chatter and traceback frames left out)."""
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        return ""
    noise = ("submitit INFO", "Traceback", "File \"", "^", "~")  # submitit's chatter, traceback frames
    keep = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith(noise)]
    return " | ".join(keep[-lines:])[-1500:]


def no_result(code: int | None) -> str:
    """Why a worker that ended without result.json failed (result.json is the only proof: PerforatedAI can exit 0
    on failure)."""
    return f"the worker exited with code {code} without writing {RESULT}"


class WorkerRun:
    """One worker process for a trial folder, from its start to its result."""

    def __init__(self, proc: Any, trial_dir: str | Path):
        self.proc = proc
        self.trial_dir = Path(trial_dir)

    @classmethod
    def start(cls, trial_dir: str | Path, spawn: Spawn | None = None, **kwargs: Any) -> WorkerRun:
        """Start the worker in `trial_dir` with `spawn` (spawn_worker: a fresh process; warm.spawn_warm: a fork of the
        warm server); kwargs go to it (env, log_path, extra_args)."""
        return cls((spawn or spawn_worker)(trial_dir, **kwargs), trial_dir)

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def sentinel(self) -> int | None:
        """A file descriptor readable once a warm worker ends (launchers/exits.py wait_any); None for a Popen."""
        return getattr(self.proc, "sentinel", None)

    def poll(self) -> int | None:
        return self.proc.poll()

    def wait(self, timeout: float | None = None) -> int | None:
        """Its exit code, or None when it still runs after `timeout` s."""
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, grace: float = GRACE_S, kill_wait: float | None = GRACE_S) -> None:
        stop_group(self.proc, grace=grace, kill_wait=kill_wait)

    def result(self) -> TrialResult | None:
        return read_result(self.trial_dir)
