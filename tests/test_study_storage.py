"""The study's sqlite storage: WAL with synchronous=NORMAL, nothing committed lost when the driver dies, attrs in one commit."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys

import optuna
import sqlalchemy

from pai_sweep.sweep.study import open_storage, set_user_attrs

optuna.logging.set_verbosity(optuna.logging.WARNING)

# A driver that commits a told trial and attrs, then dies without closing anything.
CRASH = """
import os, signal, sys, optuna
from pai_sweep.sweep.study import open_storage, set_user_attrs
study = optuna.create_study(storage=open_storage(sys.argv[1]), study_name="s")
trial = study.ask()
set_user_attrs(study, trial, {"origin": "sampler", "score": 91.5})
study.tell(trial, 91.5)
running = study.ask()
running.set_user_attr("status", "running")
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_sqlite_study_uses_wal_and_normal_sync(tmp_path):
    storage = open_storage(f"sqlite:///{tmp_path / 'study.db'}")
    optuna.create_study(storage=storage, study_name="s")
    with storage.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
    # WAL is a property of the file: any other reader (report, optuna-dashboard) sees it too
    assert sqlite3.connect(tmp_path / "study.db").execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_killed_driver_loses_nothing_committed(tmp_path):
    url = f"sqlite:///{tmp_path / 'study.db'}"
    proc = subprocess.run([sys.executable, "-c", CRASH, url], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": os.getcwd()})
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert (tmp_path / "study.db-wal").exists()  # the commits are in the log, not yet in the main file
    study = optuna.load_study(study_name="s", storage=url)
    done, running = study.trials
    assert done.state == optuna.trial.TrialState.COMPLETE and done.value == 91.5
    assert done.user_attrs == {"origin": "sampler", "score": 91.5}
    assert running.state == optuna.trial.TrialState.RUNNING and running.user_attrs == {"status": "running"}


def test_user_attrs_are_written_in_one_commit(tmp_path):
    storage = open_storage(f"sqlite:///{tmp_path / 'study.db'}")
    study = optuna.create_study(storage=storage, study_name="s")
    trial = study.ask()
    commits = []
    sqlalchemy.event.listen(storage.engine, "commit", lambda conn: commits.append(1))
    attrs = {f"attr{i}": {"value": i, "list": [i, i + 1]} for i in range(12)}
    set_user_attrs(study, trial, attrs)
    assert len(commits) == 1
    trial.set_user_attr("one_more", 1)  # optuna's own call: a commit per attr
    assert len(commits) == 2
    study.tell(trial, 1.0)
    assert study.trials[0].user_attrs == {**attrs, "one_more": 1}


def test_an_epoch_reported_again_is_left_as_it_was_without_a_warning(tmp_path):
    import warnings

    from pai_sweep.sweep.study import report_epoch

    for directions in (["maximize"], ["maximize", "minimize"]):
        study = optuna.create_study(storage=f"sqlite:///{tmp_path / f'{len(directions)}.db'}", directions=directions)
        trial = study.ask()
        report_epoch(study, trial, 50.0, 0)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # optuna's "already reported" UserWarning would raise here
            report_epoch(study, trial, 60.0, 0)  # a driver following the trial again reads metrics.jsonl from the start
        report_epoch(study, trial, 70.0, 1)
        assert study.trials[0].intermediate_values == {0: 50.0, 1: 70.0}
