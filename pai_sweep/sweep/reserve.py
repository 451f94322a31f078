"""Room for the study's last words on a full disk.

A sweep that stops because its folder refuses writes (disk full) must still record every trial it
was running, and the study's SQLite file is usually on that same disk: each commit appends to its
write-ahead log. The loop keeps a small allocated file in the sweep folder while it runs and deletes
it first when a write is refused, so those commits have room. Real blocks (posix_fallocate), not a
sparse file, or it would reserve nothing.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

RESERVE_FILE = ".space_reserve"
RESERVE_BYTES = 2 * 2**20  # a few dozen commits of the trials in flight, with the checkpoint on close


def hold(sweep_dir: Path, size: int = RESERVE_BYTES) -> None:
    """Allocate the reserve; a disk already too full to start raises an OSError naming it (one line from the CLI)."""
    path = Path(sweep_dir) / RESERVE_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            try:
                os.posix_fallocate(fd, 0, size)
            except OSError as exc:
                if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL):
                    raise
                block = b"\0" * 2**16  # a file system without fallocate (some network ones): write the blocks
                for offset in range(0, size, len(block)):
                    os.pwrite(fd, block, offset)
        finally:
            os.close(fd)
    except OSError as exc:
        release(sweep_dir)
        raise OSError(exc.errno, exc.strerror, str(path)) from exc


def release(sweep_dir: Path) -> None:
    """Give the reserve back (when a write was refused, and when the sweep ends)."""
    try:
        (Path(sweep_dir) / RESERVE_FILE).unlink(missing_ok=True)
    except OSError:
        pass
