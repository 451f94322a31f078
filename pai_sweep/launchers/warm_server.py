"""A warm worker server kept between commands (`launcher.keep_warm`): the next sweep or check forks at once.

launchers/warm.py's server is multiprocessing's forkserver: it dies with the command, so every
command waits ~3 s for its imports (torch, torch._dynamo, scikit-learn, PerforatedAI) before the
first trial forks. This server does the same job and outlives the command: it imports the same
modules once (preload.py), listens on a Unix socket, forks one child per request and reports the
child's exit code, and exits after `idle` seconds with no child and no request.

Which server a command may use is decided by a key: the Python executable, sys.path, the environment
variables read at import (PYTHON*, TORCH*, OMP*, ...), whether torchvision is preloaded, and the
files of pai-sweep and of the preloaded libraries (path, size, mtime). Anything installed or edited
since gives a new key and so a new server; the old one idles out. The server never imports user
code: a request's function and arguments are unpickled in the child, with the client's sys.path,
folder and environment.

The socket lives in a folder only this user can open (0700, checked); the server also checks each
peer's uid. Protocol: the client sends one pickled request (length-prefixed); the server answers
the child's pid, then, when the child ends, its exit code (as Popen.returncode: -N for signal N).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import os
import pickle
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

DIR_ENV = "PAI_SWEEP_WARM_DIR"  # where the sockets live (default: $XDG_RUNTIME_DIR or the temp folder, per user)
IMPORT_ENV_PREFIXES = ("PYTHON", "TORCH", "PYTORCH", "OMP_", "MKL", "KMP_", "OPENBLAS", "CUDA", "LD_", "MPL", "PAI")
LIBRARIES = ("torch", "torchvision", "perforatedai", "sklearn", "pandas", "matplotlib", "numpy", "scipy", "pyarrow")
CONNECT_TIMEOUT_S = 10.0  # a server that does not accept by then is treated as gone
_INT = struct.Struct("!i")


class KeptServerError(RuntimeError):
    """No kept server could be used (the caller falls back to the per-command server)."""


def idle_seconds(setting: Any) -> int:
    """launcher.keep_warm in seconds (schema/runtime.py): auto keeps the server for commands typed at a terminal, not
    in a SLURM job, not in scripts or CI; a number keeps it that long; 0 or off never."""
    from pai_sweep.schema.runtime import keep_warm_seconds

    interactive = sys.stdin.isatty() and sys.stdout.isatty() and "SLURM_JOB_ID" not in os.environ
    return keep_warm_seconds(setting, interactive)


def socket_dir() -> Path:
    base = os.environ.get(DIR_ENV)
    folder = Path(base) if base else Path(os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()) / f"pai-sweep-{os.getuid()}"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    st = folder.stat()
    if st.st_uid != os.getuid() or st.st_mode & 0o077:
        raise KeptServerError(f"{folder} must belong to this user with mode 0700 (chmod 700 {folder})")
    return folder


def _stamp(root: str | None) -> list[tuple[str, int, int]]:
    """(path, size, mtime) of a package's Python files: a reinstall or an edit changes it."""
    if not root:
        return []
    top = Path(root)
    files = sorted(top.rglob("*.py")) if top.name != "torch" else [top / "__init__.py", top / "version.py"]
    out = []
    for path in files:
        with contextlib.suppress(OSError):
            st = path.stat()
            out.append((str(path), st.st_size, st.st_mtime_ns))
    return out


def _package_root(name: str) -> str | None:
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    return str(Path(spec.origin).parent) if spec and spec.origin else None


def server_key(vision: bool, path: list[str] | None = None) -> str:
    """Which kept server this process may use (see the module docstring)."""
    digest = hashlib.sha256()
    env = sorted((k, v) for k, v in os.environ.items() if k.startswith(IMPORT_ENV_PREFIXES))
    libs = [(name, os.stat(f).st_mtime_ns if (f := (_package_root(name) or "")) else 0) for name in LIBRARIES]
    for part in (sys.executable, sys.version, list(path if path is not None else sys.path), env, vision, libs,
                 _stamp(str(Path(__file__).resolve().parents[1]))):
        digest.update(repr(part).encode())
    return digest.hexdigest()[:20]


# ---- the client ---------------------------------------------------------------------------------


class KeptProcess:
    """The part of subprocess.Popen the local launcher uses, for a child of the kept server."""

    def __init__(self, conn: socket.socket, pid: int):
        self._conn = conn
        self.pid = pid
        self.returncode: int | None = None
        self._pidfd: int | None = None  # the server died first: watch the child itself

    @property
    def sentinel(self) -> int:
        """A file descriptor that becomes readable when the child ends (launchers/exits.py selects on it)."""
        return self._pidfd if self._pidfd is not None else self._conn.fileno()

    def _read_code(self, block: bool) -> None:
        if self.returncode is not None or self._pidfd is not None:
            return
        self._conn.setblocking(block)
        try:
            data = _recv_exact(self._conn, _INT.size)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if data:
            self.returncode = _INT.unpack(data)[0]
            self._conn.close()
            return
        try:  # the server ended before its child: follow the child by its pid
            self._pidfd = os.pidfd_open(self.pid)
        except (ProcessLookupError, OSError):
            self.returncode = 1  # gone too, and nobody saw its exit code: result.json says how it ended

    def poll(self) -> int | None:
        self._read_code(block=False)
        if self.returncode is None and self._pidfd is not None and select.select([self._pidfd], [], [], 0)[0]:
            os.close(self._pidfd)
            self._pidfd = None
            self.returncode = 1
        return self.returncode

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise subprocess.TimeoutExpired(f"worker pid {self.pid}", timeout)
            select.select([self.sentinel], [], [], left)
        return self.returncode


def _recv_exact(conn: socket.socket, size: int) -> bytes:
    """`size` bytes, or b"" at end of stream."""
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            return b""
        data += chunk
    return data


def _connect(path: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(CONNECT_TIMEOUT_S)
    try:
        sock.connect(str(path))
    except OSError:
        sock.close()
        raise
    return sock


def _start_server(path: Path, idle: int, vision: bool) -> None:
    log = open(path.with_suffix(".log"), "ab")
    env = {**os.environ, "MPLBACKEND": os.environ.get("MPLBACKEND", "Agg"), "PYTORCH_NVML_BASED_CUDA_CHECK": "1"}
    # its own session: Ctrl-C in the terminal does not reach it; cwd "/": it holds no user folder
    starter = subprocess.Popen([sys.executable, "-c", f"from {__name__} import _main; _main()", str(path), str(idle),
                      "1" if vision else "0", repr(list(sys.path))], stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                     cwd="/", env=env, start_new_session=True, close_fds=True)
    log.close()
    starter.wait()  # it forks the server and leaves at once (_main): the server is never this process's child


def ensure_server(idle: int, vision: bool) -> Path:
    """The socket of this process's kept server, started now (in the background) if none runs."""
    path = socket_dir() / f"{server_key(vision)}.sock"
    try:
        _connect(path).close()
        return path
    except FileNotFoundError:
        pass
    except OSError:  # left behind by a server that died
        with contextlib.suppress(OSError):
            path.unlink()
    _start_server(path, idle, vision)
    return path


def request(path: Path, kind: str, payload: tuple, fds: tuple[int, ...] = (), start_timeout: float = 120.0) -> KeptProcess:
    """Ask the server at `path` to fork a child running `kind` with `payload` (and `fds`, passed to the child as open
    file descriptors); returns once the child runs."""
    deadline = time.monotonic() + start_timeout
    while True:  # a server started just now binds its socket within a second
        try:
            conn = _connect(path)
            break
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            if time.monotonic() > deadline:
                raise KeptServerError(f"no kept warm server answers at {path}: {exc}") from None
            time.sleep(0.02)
    data = pickle.dumps((kind, payload))
    conn.settimeout(start_timeout)  # the first request waits for the server's imports
    try:
        socket.send_fds(conn, [_INT.pack(len(data))], list(fds))
        conn.sendall(data)
        answer = _recv_exact(conn, _INT.size)
    except OSError as exc:
        conn.close()
        raise KeptServerError(f"the kept warm server at {path} did not start the child: {exc}") from None
    if not answer:
        conn.close()
        raise KeptServerError(f"the kept warm server at {path} closed the connection (see {path.with_suffix('.log')})")
    conn.settimeout(None)
    return KeptProcess(conn, _INT.unpack(answer)[0])


def stop(path: Path) -> int | None:
    """Ask the server at `path` to exit once its children have ended; its pid, or None when none answers."""
    try:
        conn = _connect(path)
    except OSError:
        return None
    with conn:
        data = pickle.dumps(("stop", ()))
        socket.send_fds(conn, [_INT.pack(len(data))], [])
        conn.sendall(data)
        answer = _recv_exact(conn, _INT.size)
    return _INT.unpack(answer)[0] if answer else None


# ---- the server ---------------------------------------------------------------------------------


def _main() -> None:
    import ast

    if os.fork() > 0:  # the starter leaves; the server (its child) is adopted by init, never a zombie of the client
        os._exit(0)
    path, idle, vision, client_path = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "1", ast.literal_eval(sys.argv[4])
    sys.path[:] = client_path  # the preloads resolve as the client's own imports would
    Server(path, idle, vision).serve()


class Server:
    def __init__(self, path: Path, idle: int, vision: bool):
        self.path, self.idle, self.vision = path, idle, vision
        self.children: dict[int, socket.socket] = {}
        self.stopping = False

    def serve(self) -> None:
        listener = self._bind()  # before the imports: a client's connect waits in the backlog instead of failing
        import importlib

        from pai_sweep.launchers.warm_child import PRELOAD, VISION_PRELOAD

        for name in ([VISION_PRELOAD] if self.vision else []) + PRELOAD:
            importlib.import_module(name)
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_w, False)
        signal.set_wakeup_fd(wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.signal(signal.SIGTERM, lambda *_: setattr(self, "stopping", True))
        last_use = time.monotonic()
        try:
            while True:
                self._reap()
                if not self.children and (self.stopping or not self._still_mine()):
                    return
                timeout = None if self.children else self.idle - (time.monotonic() - last_use)
                if timeout is not None and timeout <= 0:
                    return
                ready = select.select([listener, wake_r], [], [], None if timeout is None else min(timeout, 5.0))[0]
                if wake_r in ready:
                    with contextlib.suppress(BlockingIOError):
                        os.read(wake_r, 512)
                if listener in ready:
                    with contextlib.suppress(OSError):
                        conn, _ = listener.accept()
                        self._handle(conn, listener, wake_r, wake_w)
                    last_use = time.monotonic()
        finally:
            if self._still_mine():
                with contextlib.suppress(OSError):
                    self.path.unlink()

    def _bind(self) -> socket.socket:
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        own = self.path.with_name(f"{self.path.stem}.{os.getpid()}.tmp")
        listener.bind(str(own))
        listener.listen(64)
        os.replace(own, self.path)  # appears whole; two servers racing: the later one serves new clients
        self.inode = self.path.stat().st_ino
        return listener

    def _still_mine(self) -> bool:
        try:
            return self.path.stat().st_ino == self.inode
        except OSError:
            return False

    def _reap(self) -> None:
        while self.children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            conn = self.children.pop(pid, None)
            if conn is not None:
                with contextlib.suppress(OSError):
                    conn.sendall(_INT.pack(os.waitstatus_to_exitcode(status)))
                conn.close()

    def _handle(self, conn: socket.socket, listener: socket.socket, *fds: int) -> None:
        uid = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i")))[1]
        conn.settimeout(10.0)
        passed: list[int] = []
        try:
            header, passed, _, _ = socket.recv_fds(conn, _INT.size, 4) if uid == os.getuid() else (b"", [], 0, None)
            data = _recv_exact(conn, _INT.unpack(header)[0]) if len(header) == _INT.size else b""
        except (OSError, struct.error):
            data = b""
        if not data:
            for fd in passed:
                os.close(fd)
            conn.close()
            return
        if data == pickle.dumps(("stop", ())):
            self.stopping = True
            conn.sendall(_INT.pack(os.getpid()))
            conn.close()
            return
        conn.settimeout(None)
        pid = os.fork()
        if pid == 0:  # the child: nothing of the server's loop survives in it
            try:
                signal.set_wakeup_fd(-1)
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                listener.close()
                for other in self.children.values():
                    other.close()
                for fd in fds:
                    os.close(fd)
                _run_child(conn, data, passed)
            finally:
                os._exit(1)
        for fd in passed:  # the child has them now
            os.close(fd)
        print(f"server {os.getpid()}: forked {pid}", flush=True)  # the server's log: which server started what
        self.children[pid] = conn
        try:
            conn.sendall(_INT.pack(pid))
        except OSError:  # the client left: the child runs on, its exit is reaped and nobody is told
            pass


def _run_child(conn: socket.socket, data: bytes, passed: list[int]) -> None:
    from multiprocessing.connection import Connection

    from pai_sweep.launchers.warm_child import call_child, worker_child

    kind, payload = pickle.loads(data)  # here, not in the server: it may import the caller's modules
    if kind == "worker":
        *args, path = payload
        conn.close()
        sys.path[:] = path
        worker_child(*args)
    elif kind == "call":
        env, cwd, path, fn, args = payload
        conn.close()
        call_child(Connection(passed[0]), env, cwd, path, fn, args)


def stop_all() -> int:
    """Stop every kept server of this user (in socket_dir()); how many answered."""
    return sum(stop(path) is not None for path in socket_dir().glob("*.sock"))


if __name__ == "__main__":  # python -m pai_sweep.launchers.warm_server stop
    if sys.argv[1:] != ["stop"]:
        sys.exit("usage: python -m pai_sweep.launchers.warm_server stop")
    print(f"stopped {stop_all()} kept warm server(s); each exits once its running trials end")
