"""A sweep folder the file system refuses (read-only, a file in its place): one line naming the path and the
errno, exit 2, never a traceback, and no trial left behind."""

from __future__ import annotations

import errno
import pathlib
import subprocess
import sys

from pai_sweep.cli import main

COMMON = ["tracking=off", "sweep.check_first=false", "sweep.n_trials=1"]


def test_a_file_where_the_sweep_folder_goes(tmp_path, capsys):
    (tmp_path / "blocker").write_text("a file, not a folder")
    target = tmp_path / "blocker" / "s1"
    assert main([f"sweep.dir={target}", *COMMON]) == 2
    err = capsys.readouterr().err
    assert err == f"pai-sweep: error: {target}: Not a directory (errno 20 ENOTDIR): make it writable or choose another folder (e.g. sweep.dir=..., --out ...)\n"
    proc = subprocess.run([sys.executable, "-m", "pai_sweep", f"sweep.dir={target}", *COMMON], capture_output=True, text=True,
                          timeout=120, stdin=subprocess.DEVNULL)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blocker"]


def test_a_read_only_sweep_folder(tmp_path, capsys, monkeypatch):
    # Root ignores permission bits, so the read-only file system is the one mkdir reports (EROFS).
    real_mkdir = pathlib.Path.mkdir

    def read_only(self, *args, **kwargs):
        if str(self).startswith(str(tmp_path / "ro")):
            raise OSError(errno.EROFS, "Read-only file system", str(self))
        return real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(pathlib.Path, "mkdir", read_only)
    assert main([f"sweep.dir={tmp_path / 'ro' / 's1'}", *COMMON]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"pai-sweep: error: {tmp_path / 'ro' / 's1'}: Read-only file system (errno 30 EROFS): ") and err.count("\n") == 1


def test_a_full_disk_names_the_fix(capsys, monkeypatch):
    import pai_sweep.cli.sweep as sweep_cli

    def full(args):
        raise OSError(errno.ENOSPC, "No space left on device", "/data/sweeps/s1/study.db")

    monkeypatch.setattr(sweep_cli, "sweep_command", full)
    assert main(["sweep.n_trials=1"]) == 2
    assert capsys.readouterr().err == ("pai-sweep: error: /data/sweeps/s1/study.db: No space left on device (errno 28 ENOSPC): "
                                       "free disk space or choose a folder on another disk\n")
