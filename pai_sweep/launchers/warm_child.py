"""What a child of a warm server (launchers/warm.py's forkserver, or warm_server.py's kept server) does before it
runs: become a worker process as `spawn_worker` would start one, or run one function for the caller.

A leaf: both servers import it, and it imports nothing of pai-sweep's (the caller names the worker's module).
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

# What a worker imports anyway (the list: launchers/preload.py); importing it once in the server is the whole saving.
PRELOAD = ["pai_sweep.launchers.preload"]
VISION_PRELOAD = "pai_sweep.launchers.preload_vision"  # torchvision, first: ~1 s the server skips when nothing uses it


def worker_child(module: str, trial_dir: str, env: dict[str, str], log_path: str, args: tuple[str, ...] = ()) -> None:
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
    use_env(env)
    os.environ["PYTHONUNBUFFERED"] = "1"
    threads = env.get("OMP_NUM_THREADS")
    if threads:
        import torch

        torch.set_num_threads(int(threads))  # torch read OMP_NUM_THREADS when the server imported it
    # The child is a worker process: it starts the worker program by its module name, as spawn_worker's
    # `python -m pai_sweep.worker` does, so no launcher imports the worker (nor what it imports). The server
    # preloaded that module (preload.py), so this finds it in sys.modules: the same module object as before.
    try:
        code = importlib.import_module(module).main([trial_dir, *args])
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # as `python -m pai_sweep.worker` does: no atexit hook can hang or change it


def use_env(env: dict[str, str]) -> None:
    """The caller's environment in a forked child. The server fixed sys.path when it started; the PYTHONPATH
    given now (user code for a _target_) counts too."""
    os.environ.clear()
    os.environ.update(env)
    for entry in reversed([p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]):
        if entry not in sys.path:
            sys.path.insert(0, entry)


def call_child(conn: Any, env: dict[str, str], cwd: str, path: list[str], fn: Any, args: tuple) -> None:
    os.chdir(cwd)
    sys.path[:] = path
    use_env(env)
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
