"""Use the warm worker server kept between commands (warm_server.py): find or start it, fork through it.

Which server a command may use is decided by a key: the Python executable and its flags, sys.path,
the environment variables read at import (PYTHON*, TORCH*, OMP*, ...), whether torchvision is
preloaded, the process's CPU affinity, cgroup, resource limits and nice value (a child inherits them
from the server), and the installed files (pai-sweep's and PerforatedAI's sources file by file, the
other preloaded libraries by their folder, or file by file when installed from a checkout; files are .py and
compiled .so modules). Anything
changed since gives a new key and so a new server; the old one idles out.

sys.path's installation folders (site-packages) count by their mtime too: installing or removing any package
changes it.
The socket lives in a folder only this user can open (0700, not a symlink, checked), and the client
checks that the server runs as this user too.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.util
import os
import resource
import select
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from pai_sweep.launchers.exits import pid_alive, wait_any
from pai_sweep.launchers.warm_protocol import GO, INT, STATUS, STOP, peer_uid, recv_exact, send_request

DIR_ENV = "PAI_SWEEP_WARM_DIR"  # where the sockets live (default: $XDG_RUNTIME_DIR or the temp folder, per user)
IMPORT_ENV_PREFIXES = ("PYTHON", "TORCH", "PYTORCH", "OMP_", "MKL", "KMP_", "OPENBLAS", "CUDA", "LD_", "MPL", "PAI")
LIBRARIES = ("torch", "torchvision", "sklearn", "pandas", "matplotlib", "numpy", "scipy", "pyarrow", "safetensors", "PIL")
STAMPED_FILE_BY_FILE = ("pai_sweep", "perforatedai")  # small, and the ones a user edits in place
LIMITS = ("RLIMIT_AS", "RLIMIT_CPU", "RLIMIT_DATA", "RLIMIT_NOFILE", "RLIMIT_NPROC", "RLIMIT_STACK", "RLIMIT_MEMLOCK",
          "RLIMIT_CORE", "RLIMIT_FSIZE")
START_WAIT_S = 30.0  # a server started now binds its socket within this time or is given up
LOCK_WAIT_S = 45.0  # another command starting the same server holds the lock at most about START_WAIT_S
REPLY_WAIT_S = 120.0  # the first request waits for the server's imports
OLD_LOG_DAYS = 7


class KeptServerError(RuntimeError):
    """No kept server could be used (the caller falls back to the per-command server)."""


def idle_seconds(launcher: Any) -> int:
    """The launcher config's keep_warm in seconds (schema/runtime.py): auto keeps the server for commands typed at a
    terminal with launcher=local (not in scripts or CI, not on a login node whose trials go to SLURM); a number keeps
    it that long; 0 or off never. Never inside a SLURM job: a server left in one job's cgroup would run the next job's
    trials and die with the first job."""
    from pai_sweep.schema.runtime import keep_warm_seconds

    if "SLURM_JOB_ID" in os.environ:
        return 0
    launcher = {} if launcher is None else launcher
    local = str(launcher.get("name", "local")) == "local"
    return keep_warm_seconds(launcher.get("keep_warm", 0), local and _is_terminal(sys.stdin) and _is_terminal(sys.stdout))


def _is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):  # None (no console), closed, or a stand-in without a terminal
        return False


def socket_dir() -> Path:
    base = os.environ.get(DIR_ENV)
    folder = Path(base) if base else Path(os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()) / f"pai-sweep-{os.getuid()}"
    with contextlib.suppress(FileExistsError):
        folder.mkdir(mode=0o700, parents=True)
    st = os.lstat(folder)  # lstat: a symlink planted by someone else is refused, not followed
    if not os.path.isdir(folder) or os.path.islink(folder) or st.st_uid != os.getuid() or st.st_mode & 0o077:
        raise KeptServerError(f"{folder} must be a folder of this user's with mode 0700 (chmod 700 {folder})")
    return folder


def _files(root: Path) -> list[tuple[str, int, int]]:
    out = []
    for path in sorted([*root.rglob("*.py"), *root.rglob("*.so")]):  # PerforatedAI ships compiled modules
        with contextlib.suppress(OSError):
            st = path.stat()
            out.append((str(path), st.st_size, st.st_mtime_ns))
    return out


def _library_stamp(name: str) -> Any:
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin:
        return None
    root = Path(spec.origin).parent
    installed = any(part in ("site-packages", "dist-packages") for part in root.parts)
    if name in STAMPED_FILE_BY_FILE or not installed:
        return _files(root)
    with contextlib.suppress(OSError):
        return (str(root), root.stat().st_mtime_ns)  # a reinstall replaces files in it
    return None


def server_key(vision: bool, path: list[str] | None = None) -> str:
    """Which kept server this process may use (see the module docstring); ~2 ms."""
    digest = hashlib.sha256()
    env = sorted((k, v) for k, v in os.environ.items() if k.startswith(IMPORT_ENV_PREFIXES))
    for proc_file in ("/proc/self/cgroup", "/proc/self/oom_score_adj"):
        with contextlib.suppress(OSError):
            digest.update(Path(proc_file).read_bytes())
    scheduler = os.sched_getscheduler(0) if hasattr(os, "sched_getscheduler") else None
    # an installation folder's mtime changes when a package is installed into it or removed: every library the server
    # preloaded (and what they import: omegaconf, yaml, sympy, ...) comes from one. Other folders (a checkout, the
    # command's own folder) count by name only: their mtime moves with every mlflow.db journal written beside them.
    folders = []
    for entry in client_path() if path is None else path:
        stamp = None
        if any(part in ("site-packages", "dist-packages") for part in Path(entry).parts):
            with contextlib.suppress(OSError):
                stamp = os.stat(entry).st_mtime_ns
        folders.append((entry, stamp))
    limits = [resource.getrlimit(getattr(resource, n)) for n in LIMITS if hasattr(resource, n)]
    affinity = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    for part in (sys.executable, sys.version, subprocess._args_from_interpreter_flags(), folders,
                 env, vision, affinity, limits, os.getpriority(os.PRIO_PROCESS, 0), scheduler,
                 [(name, _library_stamp(name)) for name in (*STAMPED_FILE_BY_FILE, *LIBRARIES)]):
        digest.update(repr(part).encode())
    return digest.hexdigest()[:20]


# ---- a child of the server ------------------------------------------------------------------------


class KeptProcess:
    """The part of subprocess.Popen the local launcher uses, for a child of the kept server."""

    def __init__(self, conn: socket.socket, pid: int, pidfd: int | None = None):
        self._conn: socket.socket | None = conn
        self.pid = pid
        self.returncode: int | None = None
        self._code = b""
        self._pidfd = pidfd  # opened before the child started: followed by it if the server dies first

    @property
    def sentinel(self) -> int | None:
        """A file descriptor readable once the child has ended (launchers/exits.py selects on it); it stays readable."""
        if self._conn is not None:
            return self._conn.fileno()
        return self._pidfd

    def poll(self) -> int | None:
        if self.returncode is not None:
            return self.returncode
        if self._conn is not None:
            try:
                chunk = self._conn.recv(INT.size - len(self._code), socket.MSG_DONTWAIT)
            except BlockingIOError:
                return None
            except OSError:
                chunk = b""
            if chunk:
                self._code += chunk
                if len(self._code) == INT.size:
                    self.returncode = INT.unpack(self._code)[0]
                return self.returncode
            self._conn.close()  # the server ended before its child: follow the child by its pid
            self._conn = None
        if self._pidfd is not None:
            if select.select([self._pidfd], [], [], 0)[0]:
                self.returncode = 1  # nobody saw its exit code: result.json says how a worker ended
        elif not pid_alive(self.pid):
            self.returncode = 1
        return self.returncode

    def kill(self) -> None:
        if self.poll() is None:
            with contextlib.suppress(ProcessLookupError, OSError):
                if self._pidfd is not None and hasattr(signal, "pidfd_send_signal"):
                    signal.pidfd_send_signal(self._pidfd, signal.SIGKILL)  # never a later process with a reused pid
                else:
                    os.kill(self.pid, signal.SIGKILL)

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise subprocess.TimeoutExpired(f"worker pid {self.pid}", timeout)
            wait_any([self], 60.0 if left is None else left)
        return self.returncode

    def __del__(self) -> None:
        if self._conn is not None:
            self._conn.close()
        if self._pidfd is not None:
            with contextlib.suppress(OSError):
                os.close(self._pidfd)


def _pidfd(pid: int) -> int | None:
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):  # not Linux 5.3+
        return None


# ---- finding, starting, asking, stopping -----------------------------------------------------------


def _connect(path: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(10.0)
    try:
        sock.connect(str(path))
        if peer_uid(sock) != os.getuid():
            raise KeptServerError(f"{path} is served by another user's process")
    except BaseException:
        sock.close()
        raise
    return sock


def client_path() -> list[str]:
    """This process's sys.path with "" (the folder of a -c command or a REPL) spelled out: the server and its children
    run elsewhere."""
    return [os.getcwd() if entry == "" else entry for entry in sys.path]


# The server's own sys.path is the client's before it imports anything of pai-sweep's (it runs from "/")
_SERVER_MAIN = "import ast, sys; sys.path[:] = ast.literal_eval(sys.argv[4]); from pai_sweep.launchers.warm_server import main; main()"


def _start_server(path: Path, idle: int, vision: bool) -> None:
    for old in path.parent.glob("*.log"):  # logs of servers long gone (each key has its own; lock files stay)
        with contextlib.suppress(OSError):
            if not old.with_suffix(".sock").exists() and time.time() - old.stat().st_mtime > OLD_LOG_DAYS * 86400:
                old.unlink()
    env = {**os.environ, "MPLBACKEND": os.environ.get("MPLBACKEND", "Agg"), "PYTORCH_NVML_BASED_CUDA_CHECK": "1"}
    with open(path.with_suffix(".log"), "ab") as log:
        # its own session: Ctrl-C in the terminal does not reach it; cwd "/": it holds no user folder
        starter = subprocess.Popen(
            [sys.executable, *subprocess._args_from_interpreter_flags(), "-c", _SERVER_MAIN,
             str(path), str(idle), "1" if vision else "0", repr(client_path())],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, cwd="/", env=env, start_new_session=True, close_fds=True)
    # it forks the server and leaves at once: the server is never this process's child
    if starter.wait() != 0:
        raise KeptServerError(f"the kept warm server did not start (exit {starter.returncode}); see {path.with_suffix('.log')}")


def _lock(lock: Any, deadline: float) -> None:
    """The start lock, or KeptServerError by `deadline` (a command stopped with Ctrl-Z may hold it)."""
    while True:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() > deadline:
                raise KeptServerError("another command has been starting the kept warm server for too long") from None
            time.sleep(0.02)


def ensure_server(idle: int, vision: bool, on_start: Any = None) -> Path:
    """The socket of this process's kept server; one is started (it imports in the background; `on_start()` is
    called) when none runs. Two commands starting at once start one server between them (a lock file)."""
    folder = socket_dir()
    key = server_key(vision)
    path = folder / f"{key}.sock"
    with open(folder / f"{key}.lock", "w") as lock:
        _lock(lock, time.monotonic() + LOCK_WAIT_S)
        try:
            _connect(path).close()
            return path
        except FileNotFoundError:
            pass
        except KeptServerError:
            raise
        except OSError:  # left behind by a server that died
            with contextlib.suppress(OSError):
                path.unlink()
        _start_server(path, idle, vision)
        if on_start is not None:
            on_start()
        deadline = time.monotonic() + START_WAIT_S
        while not path.exists():
            if time.monotonic() > deadline:
                raise KeptServerError(f"the kept warm server did not start; see {path.with_suffix('.log')}")
            time.sleep(0.01)
    return path


def request(path: Path, kind: str, work: bytes, env: dict[str, str], cwd: str, fds: tuple[int, ...] = ()) -> KeptProcess:
    """Have the server at `path` fork a child that takes on this process's sys.path, umask and `env`, `cwd`, then
    runs `work` (worker: the pickled arguments of warm_child.worker_child; call: a pickled (fn, args) whose answer
    goes to fds[0], its output to fds[1:3]). Returns once the child runs; KeptServerError when it cannot."""
    try:
        conn = _connect(path)
    except (KeptServerError, OSError) as exc:
        raise KeptServerError(f"no kept warm server answers at {path}: {exc}") from None
    umask = os.umask(0o022)
    os.umask(umask)
    conn.settimeout(REPLY_WAIT_S)
    pidfd = None
    try:
        send_request(conn, {"kind": kind, "work": work, "env": env, "cwd": cwd, "path": client_path(), "umask": umask}, fds)
        answer = recv_exact(conn, INT.size)
        if answer:
            pidfd = _pidfd(INT.unpack(answer)[0])  # before GO: the child cannot have ended, its pid is surely its own
            conn.sendall(GO)
    except OSError as exc:
        conn.close()
        if pidfd is not None:
            os.close(pidfd)
        raise KeptServerError(f"the kept warm server at {path} did not start the child: {exc}") from None
    if not answer:
        conn.close()
        raise KeptServerError(f"the kept warm server at {path} closed the connection (see {path.with_suffix('.log')})")
    conn.settimeout(None)
    return KeptProcess(conn, INT.unpack(answer)[0], pidfd)


def _ask(path: Path, kind: str, read: Any) -> Any:
    """read(conn) after sending the server at `path` a request of `kind`; None when no server answers whole."""
    try:
        conn = _connect(path)
    except (KeptServerError, OSError):
        return None
    try:
        with conn:
            send_request(conn, {"kind": kind})
            return read(conn)
    except (OSError, ValueError, struct.error):  # still importing past the timeout, or gone meanwhile
        return None


def stop(path: Path) -> int | None:
    """Ask the server at `path` to retire (it exits once its running children end); its pid, or None."""
    return _ask(path, STOP, lambda conn: INT.unpack(recv_exact(conn, INT.size))[0])


def status(path: Path) -> dict[str, Any] | None:
    """What the server at `path` says of itself (pid, forks, running children, seconds until it exits), or None."""
    import json

    return _ask(path, STATUS, lambda conn: json.loads(recv_exact(conn, INT.unpack(recv_exact(conn, INT.size))[0])))


def status_all() -> list[dict[str, Any]]:
    """Every kept server of this user that answers."""
    found = [status(path) for path in sorted(socket_dir().glob("*.sock"))]
    return [s for s in found if s is not None]


def stop_all() -> int:
    """Stop every kept server of this user (in socket_dir()); how many answered."""
    return sum(stop(path) is not None for path in socket_dir().glob("*.sock"))


