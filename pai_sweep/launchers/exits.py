"""Wake the driver the moment a local worker ends, instead of polling on a timer.

A warm worker (launchers/warm.py) has multiprocessing's sentinel, a pipe that becomes readable
when it ends; a subprocess.Popen worker gets a pidfd (Linux 5.3+), readable when it ends. Both
are selected on without reading them, so nothing is reaped here: the launcher's poll() still
collects the exit code. Where neither exists (no pidfd), the wait checks such workers every 50 ms.
`pid_alive` answers for any process by its pid, a child or not (a zombie counts as ended).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from multiprocessing.connection import wait as _select
from typing import Any, Iterable

_SLICE_S = 0.05  # how often a worker without an exit fd is polled


def wait_any(procs: Iterable[Any], timeout: float) -> bool:
    """Block until one of `procs` ends or `timeout` seconds pass; True when one ended."""
    fds: list[int] = []
    opened: list[int] = []
    unwatched: list[Any] = []
    try:
        for proc in procs:
            sentinel = getattr(proc, "sentinel", None)
            if sentinel is not None:
                fds.append(sentinel)
                continue
            try:
                fd = os.pidfd_open(proc.pid)
            except ProcessLookupError:
                return True  # already gone
            except (AttributeError, OSError):
                unwatched.append(proc)
                continue
            opened.append(fd)
            fds.append(fd)
        if not unwatched:
            if not fds:
                time.sleep(timeout)
                return False
            return bool(_select(fds, timeout))
        deadline = time.monotonic() + timeout
        while True:
            if any(p.poll() is not None for p in unwatched):
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            if fds and _select(fds, min(_SLICE_S, left)):
                return True
            if not fds:
                time.sleep(min(_SLICE_S, left))
    finally:
        for fd in opened:
            os.close(fd)


def pid_alive(pid: int) -> bool:
    """The process runs (a zombie, ended but not yet reaped, does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        try:
            os.kill(pid, 0)
        except OSError:
            return False
        return True
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"
