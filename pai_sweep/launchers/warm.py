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

With `launcher.keep_warm` (auto: at a terminal), the server is launchers/warm_server.py instead
(through warm_client.py), kept between commands, so the next command's first trial forks at once; a kept server that cannot be used
falls back to the forkserver here.

`pai-sweep` boots the server right after composing (cli/sweep.py, before the driver's own imports),
and plan_preload leaves torchvision out when no trial of the sweep can use it. `call_warm` runs any
picklable function in a forked child and returns its result: `pai-sweep check` runs its static
checks that way, so the check's own process never imports torch.
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
from typing import Any

from pai_sweep.launchers.warm_child import PRELOAD, VISION_PRELOAD, call_child, worker_child
from pai_sweep.launchers.warm_client import KeptProcess, KeptServerError, ensure_server, idle_seconds, request
from pai_sweep.spawn import WORKER_MODULE, worker_environ

# Built-in models and data that never import torchvision (models/build.py ZOO; data/loaders.py)
NO_VISION_MODELS = ("mlp", "small_cnn", "conv1d", "transformer")
NO_VISION_DATA = ("digits", "digits32", "mnist1d")
_context: mp.context.ForkServerContext | None = None
_vision = True  # until plan_preload says otherwise: a caller that knows nothing of the config gets everything
_keep_s = 0  # launcher.keep_warm in seconds (plan_preload); 0: the forkserver, which dies with the command
_kept: Path | None = None  # the kept server's socket, once prestart found or started it
_START_LOCK = threading.Lock()


class WarmProcess:
    """The part of subprocess.Popen the local launcher uses, for a forked worker."""

    def __init__(self, process: mp.process.BaseProcess):
        self._process = process
        self.pid = process.pid  # None until start()

    def start(self) -> None:
        self._process.start()
        self.pid = self._process.pid

    def kill(self) -> None:
        self._process.kill()

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
    an image folder; a custom model or data may, so they keep it) and whether to keep it between commands
    (launcher.keep_warm); no effect once the server runs."""
    global _vision, _keep_s
    if _context is None and _kept is None:
        _keep_s = idle_seconds(cfg.get("launcher") if hasattr(cfg, "get") else None)
        models, data = _choices(cfg, "model.name"), _choices(cfg, "data.name")
        _vision = not (models and data and models <= set(NO_VISION_MODELS) and data <= set(NO_VISION_DATA))


def call_warm(fn: Any, *args: Any, timeout: float | None = None) -> Any:
    """fn(*args) in a child forked from the warm server (torch and PerforatedAI already imported), with this
    process's working folder, environment and sys.path; returns its result or raises its exception. fn and args must
    pickle (a module-level function, plain data, an OmegaConf config); a child that dies or runs past
    `timeout` seconds raises RuntimeError."""
    kept = _kept_request("call", (fn, args), dict(os.environ), os.getcwd(), pipe=True)
    if kept is not None:
        process, receive = kept
    else:
        context = _context_once()
        receive, send = context.Pipe(duplex=False)
        process = WarmProcess(context.Process(target=call_child, args=(send, dict(os.environ), os.getcwd(), list(sys.path), fn, args),
                                              daemon=False))
        with _no_main_module():
            process.start()
        send.close()
    try:
        if not receive.poll(timeout):
            process.kill()
            raise RuntimeError(f"{getattr(fn, '__name__', fn)} did not finish in {timeout:.0f} s")
        status, value = receive.recv()
    except KeyboardInterrupt:  # a kept server's child is in the server's session: the terminal's Ctrl-C misses it
        process.kill()
        raise
    except EOFError:
        raise RuntimeError(f"{getattr(fn, '__name__', fn)} ended without an answer (exit code {process.wait()})") from None
    finally:
        receive.close()
    process.wait()
    if status == "error":
        raise value
    return value


def prestart() -> None:
    """Boot the server now (it imports in the background), so the first trial forks at once; with keep_warm, find
    the kept server (or start it)."""
    global _kept
    if _keep_s > 0 and _kept is None:
        try:
            _kept = ensure_server(_keep_s, _vision, on_start=_say_kept)
            return
        except (KeptServerError, OSError) as exc:
            _kept_failed(exc)
    if _kept is None:
        from multiprocessing import forkserver

        _context_once()
        forkserver.ensure_running()


def _say_kept() -> None:
    print(f"pai-sweep: a warm worker server stays {_keep_s} s after this command for the next one (launcher.keep_warm; "
          f"off: launcher.keep_warm=off; list or stop: pai-sweep warm [--stop])", file=sys.stderr, flush=True)


def _request_twice(kind: str, work: bytes, env: dict[str, str], cwd: str, fds: tuple[int, ...]) -> KeptProcess:
    """The request; once more through a server started now when the kept one retired meanwhile (idle, stopped)."""
    global _kept
    try:
        return request(_kept, kind, work, env, cwd, fds)
    except KeptServerError:
        _kept = ensure_server(_keep_s, _vision, on_start=_say_kept)
        return request(_kept, kind, work, env, cwd, fds)


def _kept_failed(exc: BaseException) -> None:
    global _kept, _keep_s
    print(f"pai-sweep: the kept warm server cannot be used ({exc}); this command uses its own", file=sys.stderr)
    _kept, _keep_s = None, 0


def _kept_request(kind: str, work: Any, env: dict[str, str], cwd: str, pipe: bool = False) -> Any:
    """The kept server's child for this request (call: with the read end of its answer pipe, its output on this
    process's stdout and stderr), or None when no kept server is in use (or it failed: then this command falls back
    to the forkserver)."""
    if _kept is None:
        return None
    import pickle
    from multiprocessing.connection import Connection

    read_fd, write_fd = os.pipe() if pipe else (-1, -1)
    try:
        child = _request_twice(kind, pickle.dumps(work), env, cwd, fds=(write_fd, 1, 2) if pipe else ())
    except (KeptServerError, OSError) as exc:
        if pipe:
            os.close(read_fd)
        _kept_failed(exc)
        return None
    finally:
        if pipe:
            os.close(write_fd)
    return (child, Connection(read_fd)) if pipe else child


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


def spawn_warm(trial_dir: Path, env: dict | None = None, log_path: Path | None = None, extra_args: list[str] | tuple = ()) -> WarmProcess | KeptProcess:
    """Start the worker for a trial folder as a child of the warm server; same contract as spawn_worker
    (extra_args: the worker's options, e.g. --capacity-test)."""
    from pai_sweep.trial_files import WORKER_LOG

    trial_dir = Path(trial_dir).resolve()
    # absolute: a kept server's child resolves paths from the trial folder, not from this process's folder
    log_path = Path(log_path).resolve() if log_path is not None else trial_dir / WORKER_LOG
    full_env = worker_environ({"MPLBACKEND": "Agg", **(env or {})})
    args = (WORKER_MODULE, str(trial_dir), full_env, str(log_path), tuple(str(a) for a in extra_args))
    process = _kept_request("worker", args, full_env, os.getcwd())  # the child goes to the trial folder itself
    if process is None:
        process = WarmProcess(_context_once().Process(target=worker_child, args=args, daemon=False))
        with _no_main_module():
            process.start()
    # Return once the child leads its own group, so a cancel right away reaches it.
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if os.getpgid(process.pid) == process.pid:
                break
        except ProcessLookupError:
            break
        time.sleep(0.005)
    return process
