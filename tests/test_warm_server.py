"""The warm server kept between commands (launcher.keep_warm): reused by the next command, keyed on what it
imported, retired when idle or asked, and its children behave like the per-command server's
(tests/test_warm_start.py runs those tests against both)."""

from __future__ import annotations

import os
import pickle
import select
import signal
import socket
import subprocess
import sys
import time
from multiprocessing.connection import Connection
from pathlib import Path

import pytest

from pai_sweep.launchers import warm_client
from pai_sweep.launchers.processes import pid_alive, wait_gone
from pai_sweep.launchers.warm_protocol import INT, recv_exact, send_request
from pai_sweep.schema.runtime import KEEP_WARM_AUTO_S, keep_warm_seconds


def _gone(pid: int, seconds: float) -> bool:
    wait_gone([pid], seconds)
    return not pid_alive(pid)


def _ppid():
    return os.getppid()


def _sleep_then_answer(seconds):
    time.sleep(seconds)
    return "answered"


def _touch(path):
    Path(path).write_text("ran")


def _call(path: Path, fn, *args, cwd: str = "/"):
    """fn(*args) in a child of the kept server at `path`: (the child, its answer's connection)."""
    read_fd, write_fd = os.pipe()
    child = warm_client.request(path, "call", pickle.dumps((fn, args)), dict(os.environ), cwd, fds=(write_fd, 1, 2))
    os.close(write_fd)
    return child, Connection(read_fd)


def _server_pid(path: Path) -> int:
    return int(path.with_suffix(".log").read_text().split("server ")[-1].split(":")[0])


@pytest.fixture
def sockets(tmp_path, monkeypatch):
    folder = tmp_path / "sockets"
    monkeypatch.setenv(warm_client.DIR_ENV, str(folder))
    yield folder
    for sock in folder.glob("*.sock"):
        pid = warm_client.stop(sock)
        assert pid is None or _gone(pid, 30)


def test_keep_warm_setting(monkeypatch):
    assert keep_warm_seconds("auto", interactive=True) == KEEP_WARM_AUTO_S
    assert keep_warm_seconds("auto", interactive=False) == 0  # scripts, pipes, CI: nothing left behind
    assert keep_warm_seconds("off", interactive=True) == 0
    assert keep_warm_seconds(600, interactive=False) == 600
    for bad in ("-1", "inf", "nan", "soon"):
        with pytest.raises(ValueError):
            keep_warm_seconds(bad, interactive=True)
    from omegaconf import OmegaConf

    monkeypatch.setattr(warm_client, "_is_terminal", lambda stream: True)  # as typed at a terminal
    assert warm_client.idle_seconds(OmegaConf.create({"name": "local", "keep_warm": "auto"})) == KEEP_WARM_AUTO_S
    assert warm_client.idle_seconds(OmegaConf.create({"name": "slurm", "keep_warm": "auto"})) == 0, "a login node"
    assert warm_client.idle_seconds(OmegaConf.create({"name": "slurm", "keep_warm": 60})) == 60
    monkeypatch.setenv("SLURM_JOB_ID", "7")
    assert warm_client.idle_seconds(OmegaConf.create({"name": "local", "keep_warm": 600})) == 0, \
        "never inside a SLURM job: the server would live in that job's cgroup"


def test_bad_keep_warm_is_one_line_before_any_work(tmp_path):
    done = subprocess.run([sys.executable, "-m", "pai_sweep", "launcher.keep_warm=soon", f"sweep.dir={tmp_path / 's'}"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert done.stderr.strip().splitlines() == ["pai-sweep: error: launcher.keep_warm='soon' must be auto, off or seconds >= 0 (e.g. 600)"]
    assert not (tmp_path / "s").exists()


def test_the_key_changes_with_what_the_server_imported(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    base = warm_client.server_key(vision=False)
    assert warm_client.server_key(vision=False) == base
    assert warm_client.server_key(vision=True) != base  # torchvision preloaded or not
    assert warm_client.server_key(vision=False, path=[*sys.path, "/elsewhere"]) != base
    monkeypatch.setenv("OMP_NUM_THREADS", "3")  # read by torch at import
    assert warm_client.server_key(vision=False) != base
    monkeypatch.delenv("OMP_NUM_THREADS")
    monkeypatch.setenv("UNRELATED_SETTING", "x")  # the child gets the caller's environment anyway
    assert warm_client.server_key(vision=False) == base
    stamp = warm_client._library_stamp("perforatedai")
    assert isinstance(stamp, list) and any("tracker_perforatedai" in p for p, _, _ in stamp), "file by file"


def test_the_commands_own_folder_is_spelled_out(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", ["", *sys.path])
    assert warm_client.client_path()[0] == str(tmp_path), "the server runs from /: '' must not mean / there"


def _say(text):
    print(text, flush=True)
    return True


def test_a_call_prints_to_the_callers_output_and_one_server_starts_for_two_commands(sockets, capfd):
    import threading

    paths = []
    starters = [threading.Thread(target=lambda: paths.append(warm_client.ensure_server(idle=60, vision=False))) for _ in range(2)]
    for t in starters:
        t.start()
    for t in starters:
        t.join()
    assert len(paths) == 2 and paths[0] == paths[1]
    log = paths[0].with_suffix(".log")
    child, answer = _call(paths[0], _say, "printed by the child")
    assert answer.recv() == ("ok", True) and child.wait(timeout=60) == 0
    assert "printed by the child" in capfd.readouterr().out
    assert log.read_text().count(": serving ") == 1, "the lock let one of the two start a server"


def test_the_socket_folder_must_be_private(tmp_path, monkeypatch):
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    monkeypatch.setenv(warm_client.DIR_ENV, str(shared))
    with pytest.raises(warm_client.KeptServerError, match="mode 0700"):
        warm_client.socket_dir()
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    (tmp_path / "link").symlink_to(private)
    monkeypatch.setenv(warm_client.DIR_ENV, str(tmp_path / "link"))
    with pytest.raises(warm_client.KeptServerError):  # a symlink could be swapped after the check
        warm_client.socket_dir()


def test_calls_answer_and_the_server_outlives_a_long_child_then_idles_out(sockets):
    path = warm_client.ensure_server(idle=1, vision=False)
    assert warm_client.ensure_server(idle=1, vision=False) == path  # the same server: no second one started
    child, answer = _call(path, _ppid)
    assert answer.recv() == ("ok", _server_pid(path)) and child.wait(timeout=60) == 0
    # a child running longer than the idle time: the server is still there for the request right after it
    child, answer = _call(path, _sleep_then_answer, 2)
    assert answer.recv() == ("ok", "answered") and child.wait(timeout=30) == 0
    child, answer = _call(path, _ppid)
    assert answer.recv()[0] == "ok" and child.wait(timeout=30) == 0
    pid = _server_pid(path)
    assert _gone(pid, 30), "no child and no request for 1 s: the server exits"
    assert not path.exists(), "and removes its socket"


def test_a_request_whose_client_left_never_runs(sockets, tmp_path):
    path = warm_client.ensure_server(idle=60, vision=False)
    child, answer = _call(path, _ppid)  # the server has imported everything: the next fork is immediate
    assert answer.recv()[0] == "ok"
    marker = tmp_path / "ran.txt"
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.connect(str(path))
    read_fd, write_fd = os.pipe()
    send_request(conn, {"kind": "call", "work": pickle.dumps((_touch, (str(marker),))), "env": dict(os.environ), "cwd": "/",
                        "path": list(sys.path), "umask": 0o022}, (write_fd, 1, 2))
    pid = INT.unpack(recv_exact(conn, INT.size))[0]
    conn.close()  # gone before saying GO, as a client that timed out and started the work elsewhere
    assert _gone(pid, 30)
    time.sleep(0.2)
    assert not marker.exists(), "the child exited without running the request"


def test_stop_retires_the_socket_at_once_and_the_server_waits_for_its_children(sockets):
    path = warm_client.ensure_server(idle=60, vision=False)
    child, answer = _call(path, _sleep_then_answer, 3)
    old = _server_pid(path)
    assert warm_client.stop(path) == old
    deadline = time.monotonic() + 10
    while path.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not path.exists(), "a stopped server takes no new work"
    assert answer.recv() == ("ok", "answered") and child.wait(timeout=30) == 0, "its running child ends normally"
    assert _gone(old, 30)
    again = warm_client.ensure_server(idle=60, vision=False)
    assert again == path
    child, answer = _call(again, _ppid)
    assert answer.recv()[1] != old and child.wait(timeout=60) == 0


def test_a_child_outlives_a_killed_server(sockets):
    path = warm_client.ensure_server(idle=60, vision=False)
    child, answer = _call(path, _sleep_then_answer, 2)
    os.kill(_server_pid(path), signal.SIGKILL)
    assert child.poll() is None, "still running"
    assert answer.recv() == ("ok", "answered")
    assert child.wait(timeout=30) == 1  # its exit code died with the server: result.json tells how a worker ended
    assert child.sentinel is not None
    assert select.select([child.sentinel], [], [], 0)[0], "its sentinel stays readable: a launcher's wait returns at once"


def test_the_next_command_forks_from_the_kept_server(tmp_path, sockets):
    command = [sys.executable, "-m", "pai_sweep", "model=mlp", "model.hidden=[8]", "data.limit=200", "train.max_epochs=2",
               "sweep.n_trials=1", "sweep.check_first=false", "tracking=off", "launcher.keep_warm=60"]
    for name in ("first", "second"):  # sweep folders relative to the command's folder, as by default (sweeps/default)
        done = subprocess.run([*command, f"sweep.dir=sweeps/{name}"], capture_output=True, text=True, timeout=300, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        assert "complete" in (tmp_path / "sweeps" / name / "trials" / "0" / "result.json").read_text()
    run = [sys.executable, "-m", "pai_sweep", "run", *command[3:7], "launcher.keep_warm=60", "--dir", "run"]
    done = subprocess.run(run, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0 and "result: complete" in done.stdout, done.stderr
    logs = list(sockets.glob("*.log"))
    assert len(logs) == 1 and len(list(sockets.glob("*.sock"))) == 1
    forks = [line.split(":")[0] for line in logs[0].read_text().splitlines() if "forked" in line]
    assert len(forks) == 3 and len(set(forks)) == 1, f"both sweeps' trials and the run forked by one server: {forks}"
    server_pid = int(forks[0].split()[1])
    listed = subprocess.run([sys.executable, "-m", "pai_sweep", "warm"], capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0 and listed.stdout.startswith(f"pid {server_pid}: up ")
    assert "3 fork(s), 0 running, exits in " in listed.stdout
    done = subprocess.run([sys.executable, "-m", "pai_sweep", "warm", "--stop"], capture_output=True, text=True, timeout=60)
    assert done.stdout.startswith("stopped 1 kept warm server(s)")
    assert _gone(server_pid, 30)
    listed = subprocess.run([sys.executable, "-m", "pai_sweep", "warm"], capture_output=True, text=True, timeout=60)
    assert listed.stdout.startswith("no kept warm server runs")
