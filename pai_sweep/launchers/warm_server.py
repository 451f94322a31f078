"""The warm worker server kept between commands (`launcher.keep_warm`; the client side: warm_client.py).

launchers/warm.py's forkserver dies with the command, so every command waits ~3 s for its imports
(torch, torch._dynamo, scikit-learn, PerforatedAI) before the first trial forks. This server does
the same job and outlives the command: it imports the same modules once (preload.py), listens on a
Unix socket, forks one child per request, reports each child's exit code, and retires after `idle`
seconds with no child and no request, when asked to stop (or SIGTERM), or when a newer server took
its socket. Retiring, it removes its socket first (a new command starts a new server), serves the
requests already waiting, and exits once its children have ended.

It never imports user code, nor unpickles anything but plain data: a request carries the caller's
sys.path, folder, environment and umask as plain data, and its work (a function and its arguments,
for `call`) as bytes the child unpickles only after it has taken on that setup. Only this user's
processes get an answer (SO_PEERCRED).
"""

from __future__ import annotations

import contextlib
import os
import pickle
import select
import signal
import socket
import struct
import sys
import time
import traceback
from pathlib import Path

from pai_sweep.launchers.warm_protocol import GO, INT, STATUS, STOP, peer_uid, read_request, recv_exact

GO_WAIT_S = 600.0  # a child whose client never says GO exits without running (the client went away)
SELECT_SLICE_S = 5.0  # how often an idle server checks that its socket is still its own


class Server:
    def __init__(self, path: Path, idle: int, vision: bool):
        self.path, self.idle, self.vision = path, idle, vision
        self.children: dict[int, socket.socket] = {}
        self.stopping = False
        self.inode = -1
        self.started = time.time()
        self.forks = 0
        self.last_use = time.monotonic()

    def serve(self) -> None:
        listener: socket.socket | None = self._bind()  # before the imports: a client's request waits in the backlog
        print(f"server {os.getpid()}: serving {self.path}", flush=True)
        import importlib

        from pai_sweep.launchers.warm_child import PRELOAD, VISION_PRELOAD

        for name in ([VISION_PRELOAD] if self.vision else []) + PRELOAD:
            importlib.import_module(name)
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_w, False)
        signal.set_wakeup_fd(wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.signal(signal.SIGTERM, lambda *_: setattr(self, "stopping", True))
        self.last_use = time.monotonic()
        while listener is not None or self.children:
            if self._reap():
                self.last_use = time.monotonic()  # a trial longer than the idle time must not retire the server as it ends
            idle_for = time.monotonic() - self.last_use
            if listener is not None and (self.stopping or not self._still_mine() or (not self.children and idle_for >= self.idle)):
                self._retire(listener, wake_r, wake_w)
                listener = None
                continue
            timeout = None if self.children else max(0.0, self.idle - idle_for)
            watched = [wake_r] if listener is None else [listener, wake_r]
            ready = select.select(watched, [], [], SELECT_SLICE_S if timeout is None else min(timeout, SELECT_SLICE_S))[0]
            if wake_r in ready:
                with contextlib.suppress(BlockingIOError):
                    os.read(wake_r, 512)
            if listener is not None and listener in ready:
                with contextlib.suppress(OSError):
                    conn, _ = listener.accept()
                    self._handle(conn, listener, wake_r, wake_w)
                self.last_use = time.monotonic()
        print(f"server {os.getpid()}: exits", flush=True)

    def _status(self) -> bytes:
        import json

        idle_for = time.monotonic() - self.last_use
        data = json.dumps({"pid": os.getpid(), "socket": str(self.path), "started": self.started, "forks": self.forks,
                           "running": len(self.children), "idle_s": self.idle, "vision": self.vision,
                           "exits_in_s": None if self.children else round(max(0.0, self.idle - idle_for)),
                           "python": sys.executable}).encode()
        return INT.pack(len(data)) + data

    def _bind(self) -> socket.socket:
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        own = self.path.with_name(f"{self.path.stem}.{os.getpid()}.tmp")
        listener.bind(str(own))
        listener.listen(64)
        os.replace(own, self.path)  # appears whole
        self.inode = self.path.stat().st_ino
        return listener

    def _still_mine(self) -> bool:
        try:
            return self.path.stat().st_ino == self.inode
        except OSError:
            return False

    def _retire(self, listener: socket.socket, *fds: int) -> None:
        """No new client finds this server; those already waiting in its backlog are still served."""
        if self._still_mine():
            with contextlib.suppress(OSError):
                self.path.unlink()
        listener.setblocking(False)
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:  # BlockingIOError: nobody else is waiting
                break
            conn.setblocking(True)
            self._handle(conn, listener, *fds)  # never raises
        listener.close()

    def _reap(self) -> int:
        ended = 0
        while self.children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            ended += 1
            conn = self.children.pop(pid, None)
            if conn is not None:
                with contextlib.suppress(OSError):
                    conn.sendall(INT.pack(os.waitstatus_to_exitcode(status)))
                conn.close()
        return ended

    def _handle(self, conn: socket.socket, listener: socket.socket, *fds: int) -> None:
        """One request; nothing a client sends can end the server."""
        try:
            self._answer(conn, listener, *fds)
        except Exception as exc:  # noqa: BLE001 - logged; the server goes on serving
            print(f"server {os.getpid()}: a request failed: {type(exc).__name__}: {exc}", flush=True)
            conn.close()

    def _answer(self, conn: socket.socket, listener: socket.socket, *fds: int) -> None:
        conn.settimeout(10.0)
        try:
            request, passed = read_request(conn) if peer_uid(conn) == os.getuid() else (None, [])
        except (OSError, ValueError, pickle.UnpicklingError, EOFError, struct.error):
            request, passed = None, []
        if request is not None and request.get("kind") == STATUS:
            with contextlib.suppress(OSError):
                conn.sendall(self._status())
            conn.close()
            return
        if request is None or request.get("kind") == STOP:
            if request is not None:
                self.stopping = True
                with contextlib.suppress(OSError):
                    conn.sendall(INT.pack(os.getpid()))
            conn.close()
            return
        try:
            pid = os.fork()
        except OSError:
            for fd in passed:
                os.close(fd)
            raise
        if pid == 0:  # the child: nothing of the server's loop survives in it
            try:
                signal.set_wakeup_fd(-1)
                for sig in (signal.SIGCHLD, signal.SIGTERM):
                    signal.signal(sig, signal.SIG_DFL)
                listener.close()
                for other in self.children.values():
                    other.close()
                for fd in fds:
                    os.close(fd)
                _run_child(conn, request, passed)
            except BaseException:  # noqa: BLE001 - the child's own failure, said where its output goes
                traceback.print_exc()
                sys.stderr.flush()
            finally:
                os._exit(1)
        for fd in passed:  # the child has them now
            os.close(fd)
        self.forks += 1
        print(f"server {os.getpid()}: forked {pid}", flush=True)  # the log: which server started what
        self.children[pid] = conn
        try:
            conn.sendall(INT.pack(pid))
        except OSError:  # the client left: the child gets no GO and exits without running
            pass


def _run_child(conn: socket.socket, request: dict, passed: list[int]) -> None:
    conn.settimeout(GO_WAIT_S)
    try:
        go = recv_exact(conn, len(GO))
    except OSError:
        go = b""
    conn.close()
    if go != GO:  # the client gave up on this request (and may have started the work elsewhere)
        os._exit(1)
    import tempfile

    from pai_sweep.launchers.warm_child import call_child, use_env, worker_child

    if request["kind"] == "call":
        _, out, err = passed
        os.dup2(out, 1)  # the caller's terminal, as a forkserver child of its own would print (its errors too)
        os.dup2(err, 2)
        sys.stdout = open(1, "w", buffering=1, closefd=False)
        sys.stderr = open(2, "w", buffering=1, closefd=False)
    # The caller's setup first, then its work: unpickling a function imports its module, from the caller's sys.path
    os.chdir(request["cwd"])
    sys.path[:] = request["path"]
    os.umask(request["umask"])
    use_env(request["env"])
    tempfile.tempdir = None  # chosen at the server's imports; the caller's TMPDIR counts
    work = pickle.loads(request["work"])
    if request["kind"] == "worker":
        worker_child(*work)
    elif request["kind"] == "call":
        from multiprocessing.connection import Connection

        answer = passed[0]
        fn, args = work
        call_child(Connection(answer), request["env"], request["cwd"], request["path"], fn, args)


def main() -> None:
    """Run by warm_client._SERVER_MAIN with argv SOCKET IDLE VISION SYS_PATH; that line has already set sys.path to
    SYS_PATH (the client's) before importing this module, so the preloads resolve as the client's own imports would."""
    if os.fork() > 0:  # the starter leaves; the server (its child) is adopted by init, never a zombie of the client
        os._exit(0)
    Server(Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "1").serve()
