"""The console entry (`pai-sweep`, `python -m pai_sweep`) leaves with os._exit after what a normal exit does:
non-daemon threads joined, atexit handlers run, output flushed, the command's code; a real sweep through it
has written its summary and report and finished its MLflow runs before the process ends."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from pai_sweep.cli.exits import exit_code


def test_exit_code_as_sys_exit_gives_it():
    assert [exit_code(v) for v in (None, 0, 3, 130, 256 + 2)] == [0, 0, 3, 130, 2]
    assert exit_code("pai-sweep: error") == 1


def test_exit_now_does_what_a_normal_exit_does(tmp_path):
    marker = tmp_path / "thread.txt"
    script = textwrap.dedent(f"""
        import atexit, sys, threading, time
        from pai_sweep.cli.exits import exit_now
        atexit.register(lambda: print("atexit ran", file=sys.stderr))
        def late():
            time.sleep(0.3)
            open({str(marker)!r}, "w").write("written")
        threading.Thread(target=late).start()
        threading.Thread(target=time.sleep, args=(60,), daemon=True).start()  # a daemon is not waited for
        sys.stdout.write("buffered, never flushed by the script")
        exit_now(3)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 3
    assert proc.stdout == "buffered, never flushed by the script"
    assert proc.stderr == "atexit ran\n"
    assert marker.read_text() == "written"


def test_usage_error_exit_code():
    proc = subprocess.run([sys.executable, "-m", "pai_sweep", "--no-such-flag"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "unrecognized arguments" in proc.stderr


@pytest.mark.timeout(300)
def test_sweep_finished_before_the_process_ends(tmp_path):
    pytest.importorskip("mlflow")
    sweep_dir = tmp_path / "s"
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    cmd = [sys.executable, "-m", "pai_sweep", "sweep.n_trials=1", "sweep.check_first=false", "train.max_epochs=2",
           "data.limit=200", f"sweep.dir={sweep_dir}", "sweep.name=hard-exit", "tracking=mlflow", f"tracking.uri={store}"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=280, cwd=tmp_path, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "study: optuna-dashboard" in proc.stderr + proc.stdout  # the closing lines were flushed
    summary = json.loads((sweep_dir / "summary.json").read_text())
    assert summary["states"] == {"complete": 1}
    assert (sweep_dir / "report" / "report.html").stat().st_size > 0
    import mlflow

    mlflow.set_tracking_uri(store)
    found = mlflow.search_runs(experiment_names=["hard-exit"], output_format="list")
    assert len(found) == 2 and {r.info.status for r in found} == {"FINISHED"}  # the sweep's run and its trial's


def test_console_script_is_the_hard_exit_entry():
    import importlib
    import tomllib
    from pathlib import Path

    scripts = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())["project"]["scripts"]
    module, _, name = scripts["pai-sweep"].partition(":")
    assert (module, name) == ("pai_sweep.cli.entry", "main")
    assert callable(getattr(importlib.import_module(module), name))
