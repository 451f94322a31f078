"""The warm server kept between commands (launcher.keep_warm): reused by the next command, keyed on what it
imported, gone when idle, and its children behave like the per-command server's (tests/test_warm_start.py runs
those tests against both)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pai_sweep.launchers import warm, warm_server
from pai_sweep.schema.runtime import KEEP_WARM_AUTO_S, keep_warm_seconds


def _gone(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def _ppid(_=None):
    return os.getppid()


def _sleep_then_answer(seconds):
    time.sleep(seconds)
    return "answered"


def test_keep_warm_setting():
    assert keep_warm_seconds("auto", interactive=True) == KEEP_WARM_AUTO_S
    assert keep_warm_seconds("auto", interactive=False) == 0  # scripts, CI, SLURM jobs: nothing left behind
    assert keep_warm_seconds("off", interactive=True) == 0
    assert keep_warm_seconds(600, interactive=False) == 600
    for bad in ("-1", "inf", "nan", "soon"):
        with pytest.raises(ValueError):
            keep_warm_seconds(bad, interactive=True)


def test_bad_keep_warm_is_one_line_before_any_work(tmp_path):
    done = subprocess.run([sys.executable, "-m", "pai_sweep", "launcher.keep_warm=soon", f"sweep.dir={tmp_path / 's'}"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert done.stderr.strip().splitlines() == ["pai-sweep: error: launcher.keep_warm='soon' must be auto, off or seconds >= 0 (e.g. 600)"]
    assert not (tmp_path / "s").exists()


def test_the_key_changes_with_what_the_server_imported(monkeypatch):
    base = warm_server.server_key(vision=False)
    assert warm_server.server_key(vision=False) == base
    assert warm_server.server_key(vision=True) != base  # torchvision preloaded or not
    assert warm_server.server_key(vision=False, path=[*sys.path, "/elsewhere"]) != base
    monkeypatch.setenv("OMP_NUM_THREADS", "3")  # read by torch at import
    assert warm_server.server_key(vision=False) != base
    monkeypatch.delenv("OMP_NUM_THREADS")
    monkeypatch.setenv("UNRELATED_SETTING", "x")  # the child gets the caller's environment anyway
    assert warm_server.server_key(vision=False) == base


def test_the_socket_folder_must_be_private(tmp_path, monkeypatch):
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o777)
    shared.chmod(0o777)
    monkeypatch.setenv(warm_server.DIR_ENV, str(shared))
    with pytest.raises(warm_server.KeptServerError, match="mode 0700"):
        warm_server.socket_dir()


def test_a_server_serves_calls_idles_out_and_a_child_outlives_it(tmp_path, monkeypatch):
    monkeypatch.setenv(warm_server.DIR_ENV, str(tmp_path / "sockets"))
    path = warm_server.ensure_server(idle=2, vision=False)
    assert warm_server.ensure_server(idle=2, vision=False) == path  # the same server: no second one started
    read_fd, write_fd = os.pipe()
    child = warm_server.request(path, "call", ({**os.environ}, str(tmp_path), list(sys.path), _ppid, ()), fds=(write_fd,))
    os.close(write_fd)
    from multiprocessing.connection import Connection

    answer = Connection(read_fd)
    status, server_pid = answer.recv()
    assert status == "ok" and child.wait(timeout=30) == 0
    assert os.stat(f"/proc/{server_pid}").st_uid == os.getuid()
    assert _gone(server_pid, 30), "no child, no request for 2 s: the server exits"
    assert not path.exists(), "and removes its socket"

    # A child keeps running when its server dies; the client follows it by its pid instead
    path = warm_server.ensure_server(idle=60, vision=False)
    read_fd, write_fd = os.pipe()
    child = warm_server.request(path, "call", ({**os.environ}, str(tmp_path), list(sys.path), _sleep_then_answer, (2,)),
                                fds=(write_fd,))
    os.close(write_fd)
    answer = Connection(read_fd)
    server_pid = int(Path(path.with_suffix(".log")).read_text().split("server ")[-1].split(":")[0])
    os.kill(server_pid, signal.SIGKILL)
    assert child.poll() is None, "still running"
    assert answer.recv() == ("ok", "answered")
    assert child.wait(timeout=30) == 1  # its exit code died with the server: result.json tells how a worker ended


def test_the_next_command_forks_from_the_kept_server(tmp_path, monkeypatch):
    monkeypatch.setenv(warm_server.DIR_ENV, str(tmp_path / "sockets"))
    command = [sys.executable, "-m", "pai_sweep", "model=mlp", "model.hidden=[8]", "data.limit=200", "train.max_epochs=2",
               "sweep.n_trials=1", "sweep.check_first=false", "tracking=off", "launcher.keep_warm=60"]
    for name in ("first", "second"):
        done = subprocess.run([*command, f"sweep.dir={tmp_path / name}"], capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
    logs = list((tmp_path / "sockets").glob("*.log"))
    assert len(logs) == 1 and len(list((tmp_path / "sockets").glob("*.sock"))) == 1
    forks = [line.split(":")[0] for line in logs[0].read_text().splitlines() if "forked" in line]
    assert len(forks) == 2 and forks[0] == forks[1], f"both trials forked by one server: {forks}"
    server_pid = int(forks[0].split()[1])
    done = subprocess.run([sys.executable, "-m", "pai_sweep.launchers.warm_server", "stop"], capture_output=True, text=True,
                          timeout=60)
    assert done.stdout.startswith("stopped 1 kept warm server(s)")
    assert _gone(server_pid, 30)
