"""Warm worker starts: fork each trial from a process that has already imported torch and perforatedai.

A fresh `python -m pai_sweep.worker` spends seconds importing torch and perforatedai before
it trains. Here multiprocessing's forkserver imports them once (configuring nothing and never
touching CUDA), then forks one child per trial. The child starts with the library's default
settings, exactly like a fresh process, so it is still one process per trial: PerforatedAI's
global state never crosses trials. The child sets itself up as `spawn_worker` would: its own
session (process group), stdin on /dev/null, stdout and stderr into worker.log, cwd the trial
folder, the slot's environment.

Used for CPU slots by default (`launcher.warm_start=auto`): a GPU child relies on CUDA never
having been initialised before the fork, which only a fresh process guarantees.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import subprocess
import sys
import threading
import time
import types
from pathlib import Path

# What a worker imports anyway (the list: launchers/preload.py); importing it once in the server is the whole saving.
PRELOAD = ["pai_sweep.launchers.preload"]
_context: mp.context.ForkServerContext | None = None
_START_LOCK = threading.Lock()


class WarmProcess:
    """The part of subprocess.Popen the local launcher uses, for a forked worker."""

    def __init__(self, process: mp.process.BaseProcess):
        self._process = process
        self.pid = process.pid

    @property
    def sentinel(self) -> int:
        """A file descriptor that becomes readable when the worker ends (launchers/exits.py selects on it)."""
        return self._process.sentinel

    def poll(self) -> int | None:
        return self._process.exitcode

    def wait(self, timeout: float | None = None) -> int:
        self._process.join(timeout)
        if self._process.exitcode is None:
            raise subprocess.TimeoutExpired(f"worker pid {self.pid}", timeout)
        return self._process.exitcode


def _context_once() -> mp.context.ForkServerContext:
    global _context
    if _context is None:
        # The server inherits this environment: headless plots, and an NVML-only CUDA check if a
        # library asks whether CUDA exists, so nothing initialises CUDA before a fork.
        os.environ.setdefault("MPLBACKEND", "Agg")
        os.environ.setdefault("PYTORCH_NVML_BASED_CUDA_CHECK", "1")
        _context = mp.get_context("forkserver")
        _context.set_forkserver_preload(PRELOAD)
    return _context


def _child(trial_dir: str, env: dict[str, str], log_path: str, args: tuple[str, ...] = ()) -> None:
    log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.chdir(trial_dir)  # before setsid: once spawn_warm returns, /proc/<pid>/cwd names the trial (reattach)
    os.setsid()  # own process group: the launcher's killpg stops it and anything it starts
    os.dup2(log, 1)
    os.dup2(log, 2)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    sys.stdin = open(os.devnull)  # a library pdb.set_trace() raises BdbQuit instead of waiting
    sys.stdout = open(1, "w", buffering=1, closefd=False)
    sys.stderr = open(2, "w", buffering=1, closefd=False)
    os.environ.clear()
    os.environ.update(env)
    os.environ["PYTHONUNBUFFERED"] = "1"
    # The server fixed sys.path when it started; the slot's PYTHONPATH (user code for _target_) counts now.
    for entry in reversed([p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]):
        if entry not in sys.path:
            sys.path.insert(0, entry)
    threads = env.get("OMP_NUM_THREADS")
    if threads:
        import torch

        torch.set_num_threads(int(threads))  # torch read OMP_NUM_THREADS when the server imported it
    from pai_sweep.worker import main

    try:
        code = main([trial_dir, *args])
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # as `python -m pai_sweep.worker` does: no atexit hook can hang or change it


def prestart() -> None:
    """Boot the server now (it imports in the background), so the first trial forks at once."""
    from multiprocessing import forkserver

    _context_once()
    forkserver.ensure_running()


@contextlib.contextmanager
def _no_main_module():
    """Start a child without multiprocessing re-running the caller's __main__ script in it.

    The child needs nothing from __main__ (its target lives in this module); without this, an
    unguarded script that calls the driver would run again inside every trial.
    """
    with _START_LOCK:  # two threads starting children (the check's capacity tests) must not swap it in turn
        real = sys.modules["__main__"]
        sys.modules["__main__"] = types.ModuleType("__main__")
        try:
            yield
        finally:
            sys.modules["__main__"] = real


def spawn_warm(trial_dir: Path, env: dict | None = None, log_path: Path | None = None, extra_args: list[str] | tuple = ()) -> WarmProcess:
    """Start the worker for a trial folder as a child of the warm server; same contract as spawn_worker
    (extra_args: the worker's options, e.g. --capacity-test)."""
    from pai_sweep.trial_files import WORKER_LOG

    trial_dir = Path(trial_dir).resolve()
    log_path = Path(log_path) if log_path is not None else trial_dir / WORKER_LOG
    full_env = {**os.environ, "MPLBACKEND": "Agg", **(env or {})}
    process = _context_once().Process(target=_child, args=(str(trial_dir), full_env, str(log_path), tuple(str(a) for a in extra_args)), daemon=False)
    with _no_main_module():
        process.start()
    # Return once the child leads its own group, so a cancel right away reaches it.
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline and process.exitcode is None:
        try:
            if os.getpgid(process.pid) == process.pid:
                break
        except ProcessLookupError:
            break
        time.sleep(0.005)
    return WarmProcess(process)
