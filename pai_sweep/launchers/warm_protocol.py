"""The wire format between a command and the kept warm server (warm_client.py, warm_server.py). A leaf module.

A request is one length-prefixed pickle of plain data (str, int, list, dict, bytes: unpickling it imports
nothing), sent with file descriptors (SCM_RIGHTS) beside the length. The server answers the child's pid;
the client answers GO (the child starts only then: a request whose client gave up never runs); the server
sends the child's exit code (as Popen.returncode: -N for signal N) when it ends.
"""

from __future__ import annotations

import os
import pickle
import socket
import struct
from typing import Any

INT = struct.Struct("!i")
GO = b"g"
MAX_FDS = 4
STOP = "stop"
STATUS = "status"  # answered with length-prefixed JSON (not pickle: the client reads it without trusting it further)


def recv_exact(conn: socket.socket, size: int) -> bytes:
    """`size` bytes, or b"" at the end of the stream."""
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            return b""
        data += chunk
    return data


def send_request(conn: socket.socket, request: dict[str, Any], fds: tuple[int, ...] = ()) -> None:
    data = pickle.dumps(request)
    socket.send_fds(conn, [INT.pack(len(data))], list(fds))
    conn.sendall(data)


def read_request(conn: socket.socket) -> tuple[dict[str, Any] | None, list[int]]:
    """The request and the descriptors sent with it; (None, []) for a connection that sent nothing whole."""
    header, fds, _, _ = socket.recv_fds(conn, INT.size, MAX_FDS)
    request = None
    try:
        data = recv_exact(conn, INT.unpack(header)[0]) if len(header) == INT.size else b""
        request = pickle.loads(data) if data else None
    finally:
        if not isinstance(request, dict):  # nothing whole, or not ours: the descriptors go back at once
            for fd in fds:
                os.close(fd)
    return (request, fds) if isinstance(request, dict) else (None, [])


def peer_uid(conn: socket.socket) -> int:
    """The uid of the process at the other end (Linux SO_PEERCRED: pid, uid, gid)."""
    return struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i")))[1]
