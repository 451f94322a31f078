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

`pai-sweep` boots the server right after composing (cli/sweep.py, before the driver's own imports),
and plan_preload leaves torchvision out when no trial of the sweep can use it. `call_warm` runs any
picklable function in a forked child and returns its result: `pai-sweep check` runs its static
checks that way, so the check's own process never imports torch.
"""

from __future__ import annotations

import contextlib
import importlib
import multiprocessing as mp
import os
import subprocess
import sys
import threading
import time
import types
from pathlib import Path
from typing import Any

from pai_sweep.spawn import WORKER_MODULE, worker_environ

# What a worker imports anyway (the list: launchers/preload.py); importing it once in the server is the whole saving.
PRELOAD = ["pai_sweep.launchers.preload"]
VISION_PRELOAD = "pai_sweep.launchers.preload_vision"  # torchvision, first: ~1 s the server skips when nothing uses it
# Built-in models and data that never import torchvision (models/build.py ZOO; data/loaders.py)
NO_VISION_MODELS = ("mlp", "small_cnn", "conv1d", "transformer")
NO_VISION_DATA = ("digits", "digits32", "mnist1d")
_context: mp.context.ForkServerContext | None = None
_vision = True  # until plan_preload says otherwise: a caller that knows nothing of the config gets everything
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
        _context.set_forkserver_preload(([VISION_PRELOAD] if _vision else []) + PRELOAD)
    return _context


def _choices(cfg: Any, key: str) -> set[str]:
    """The values `key` takes in this sweep: the config's own, and the choices sweep.space searches."""
    group, field = key.split(".")
    values = {str(cfg[group][field])} if group in cfg and field in cfg[group] else set()
    space = cfg.get("sweep", {}).get("space") or {}
    spec = space.get(key) if hasattr(space, "get") else None
    if spec is not None and hasattr(spec, "get"):
        values |= {str(v) for v in spec.get("choices") or ()}
    return values


def plan_preload(cfg: Any) -> None:
    """Tell the server, before it boots, whether this sweep's trials use torchvision (a model from it, CIFAR or
    an image folder; a custom model or data may, so they keep it); no effect once the server runs."""
    global _vision
    if _context is None:
        models, data = _choices(cfg, "model.name"), _choices(cfg, "data.name")
        _vision = not (models and data and models <= set(NO_VISION_MODELS) and data <= set(NO_VISION_DATA))


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
    _use_env(env)
    os.environ["PYTHONUNBUFFERED"] = "1"
    threads = env.get("OMP_NUM_THREADS")
    if threads:
        import torch

        torch.set_num_threads(int(threads))  # torch read OMP_NUM_THREADS when the server imported it
    # The child is a worker process: it starts the worker program by its module name, as spawn_worker's
    # `python -m pai_sweep.worker` does, so no launcher imports the worker (nor what it imports). The server
    # preloaded that module (preload.py), so this finds it in sys.modules: the same module object as before.
    try:
        code = importlib.import_module(WORKER_MODULE).main([trial_dir, *args])
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # as `python -m pai_sweep.worker` does: no atexit hook can hang or change it


def _use_env(env: dict[str, str]) -> None:
    """The caller's environment in a forked child. The server fixed sys.path when it started; the PYTHONPATH
    given now (user code for a _target_) counts too."""
    os.environ.clear()
    os.environ.update(env)
    for entry in reversed([p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]):
        if entry not in sys.path:
            sys.path.insert(0, entry)


def _call_child(conn: Any, env: dict[str, str], cwd: str, path: list[str], fn: Any, args: tuple) -> None:
    os.chdir(cwd)
    sys.path[:] = path
    _use_env(env)
    sys.stdin = open(os.devnull)  # a library pdb.set_trace() raises BdbQuit instead of waiting
    try:
        answer = ("ok", fn(*args))
    except BaseException as exc:  # noqa: BLE001 - handed to the caller, which raises it
        answer = ("error", exc)
    try:
        conn.send(answer)
    except Exception as exc:  # noqa: BLE001 - an answer that does not pickle
        conn.send(("error", RuntimeError(f"{type(exc).__name__}: {exc}")))
    conn.close()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def call_warm(fn: Any, *args: Any, timeout: float | None = None) -> Any:
    """fn(*args) in a child forked from the warm server (torch and PerforatedAI already imported), with this
    process's working folder, environment and sys.path; returns its result or raises its exception. fn and args must
    pickle (a module-level function, plain data, an OmegaConf config); a child that dies or runs past
    `timeout` seconds raises RuntimeError."""
    context = _context_once()
    receive, send = context.Pipe(duplex=False)
    process = context.Process(target=_call_child, args=(send, dict(os.environ), os.getcwd(), list(sys.path), fn, args), daemon=False)
    with _no_main_module():
        process.start()
    send.close()
    try:
        if not receive.poll(timeout):
            process.kill()
            raise RuntimeError(f"{getattr(fn, '__name__', fn)} did not finish in {timeout:.0f} s")
        status, value = receive.recv()
    except EOFError:
        process.join()
        raise RuntimeError(f"{getattr(fn, '__name__', fn)} ended without an answer (exit code {process.exitcode})") from None
    finally:
        receive.close()
    process.join()
    if status == "error":
        raise value
    return value


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
    full_env = worker_environ({"MPLBACKEND": "Agg", **(env or {})})
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
