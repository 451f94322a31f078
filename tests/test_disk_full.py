"""A disk that fills mid-sweep, on a real small file system (tmpfs in a private mount namespace, so no root is
needed where user namespaces are allowed): one line naming the path and errno 28, exit 2, no trial left RUNNING in
the study, no temporary file of an atomic write left behind; the same command continues once there is room. A
trial whose worker dies of it ends FAIL with that reason."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from pai_sweep.sweep import reserve
from pai_sweep.sweep.study import STOPPED_REASON

pytestmark = pytest.mark.slow

SMALL = ["model=mlp", "dendrites=linear_only", "data.limit=400", "train.max_epochs=6", "train.graphs=end",
         "train.test_saves=false", "tracking=off", "sweep.check_first=false", "sweep.in_flight=1"]
ENOSPC_LINE = "No space left on device (errno 28 ENOSPC): free disk space or choose a folder on another disk"

# Runs a command with a tmpfs of $SIZE at $MNT (private to this process: gone when it ends), then copies the
# mount's content to $OUT so the test can read it; a second command (after $BIGGER) runs with more room.
SCRIPT = r"""
set -u
mount -t tmpfs -o size="$SIZE" tmpfs "$MNT" || exit 90
"$PY" -m pai_sweep "$@" >"$OUT/first.out" 2>"$OUT/first.err"; echo $? >"$OUT/first.rc"
find "$MNT" \( -name '*.tmp' -o -name '{reserve}' \) >"$OUT/leftovers"
mkdir "$OUT/first" && cp -a "$MNT/." "$OUT/first/"
if [ -n "$BIGGER" ]; then
  mount -o remount,size="$BIGGER" "$MNT" || exit 91
  "$PY" -m pai_sweep "$@" >"$OUT/second.out" 2>"$OUT/second.err"; echo $? >"$OUT/second.rc"
  mkdir "$OUT/second" && cp -a "$MNT/." "$OUT/second/"
fi
""".replace("{reserve}", reserve.RESERVE_FILE)


def on_small_disk(mnt: Path, out: Path, size: str, args: list[str], bigger: str = "") -> None:
    mnt.mkdir(parents=True, exist_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "MNT": str(mnt), "OUT": str(out), "SIZE": size, "BIGGER": bigger, "PY": sys.executable}
    proc = subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", SCRIPT, "sh", *args],
                          env=env, capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, f"could not mount a tmpfs in a private namespace: {proc.stderr}"


def trials(study_db: Path) -> list[optuna.trial.FrozenTrial]:
    work = study_db.parent / "readable.db"  # a copy: reading must not touch the sweep's own file
    shutil.copy(study_db, work)
    for suffix in ("-wal", "-shm"):  # the study is in WAL mode: what is not checkpointed yet lives in its -wal file
        if study_db.with_name(study_db.name + suffix).exists():
            shutil.copy(study_db.with_name(study_db.name + suffix), work.with_name(work.name + suffix))
    return optuna.load_study(study_name="default", storage=f"sqlite:///{work}").get_trials()


def test_the_disk_fills_mid_sweep(tmp_path):
    mnt, out = tmp_path / "disk", tmp_path / "out"
    sweep = mnt / "s"
    # 3.5 MB: a few trials of this MLP (~0.3 MB each) and the study's log fit, eight do not
    on_small_disk(mnt, out, "3500k", [*SMALL, "model.hidden=[16]", "sweep.n_trials=8", f"sweep.dir={sweep}"], bigger="64m")

    err = (out / "first.err").read_text()
    assert (out / "first.rc").read_text().strip() == "2", err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith(f"pai-sweep: error: {sweep}/") and err.rstrip().endswith(ENOSPC_LINE), err
    assert (out / "leftovers").read_text() == "", "temporary files or the reserve left behind"
    first = trials(out / "first" / "s" / "study.db")
    states = [t.state for t in first]
    assert TrialState.RUNNING not in states, [(t.number, t.state) for t in first]
    done = [t for t in first if t.state == TrialState.COMPLETE]
    assert 1 <= len(done) < 8, states  # it filled mid-sweep
    for t in first:
        if t.state == TrialState.FAIL:  # stopped and queued again, or failed of the full disk, naming it
            reason = t.user_attrs["reason"]
            assert reason == STOPPED_REASON or "No space left on device" in reason, reason

    # with room, the same command finishes the sweep: the stopped trials run again and count once
    assert (out / "second.rc").read_text().strip() == "0", (out / "second.err").read_text()
    second = trials(out / "second" / "s" / "study.db")
    assert TrialState.RUNNING not in [t.state for t in second]
    assert sum(1 for t in second if t.state == TrialState.COMPLETE) == 8
    assert [t.number for t in second if t.state == TrialState.COMPLETE][:len(done)] == [t.number for t in done]


def test_a_worker_that_dies_of_a_full_trial_folder_ends_failed_with_the_reason(tmp_path):
    # The sweep folder has room; the first trial's folder is a 16 kB disk: the worker's checkpoint fails, and so
    # does its result.json. The driver cannot write result.json either: the trial ends FAIL naming the folder's
    # errno, and the sweep stops on that line instead of running every trial into it.
    sweep, out = tmp_path / "s", tmp_path / "out"
    (sweep / "trials").mkdir(parents=True)
    on_small_disk(sweep / "trials" / "0", out, "16k", [*SMALL, "model.hidden=[512]", "sweep.n_trials=3", f"sweep.dir={sweep}"])

    err = (out / "first.err").read_text()
    result_json = sweep / "trials" / "0" / "result.json"
    assert (out / "first.rc").read_text().strip() == "2", err
    assert err == f"pai-sweep: error: {result_json}: {ENOSPC_LINE}\n"
    assert (out / "leftovers").read_text() == ""
    by_number = {t.number: t for t in trials(sweep / "study.db")}
    assert by_number[0].state == TrialState.FAIL
    reason = by_number[0].user_attrs["reason"]
    assert reason.startswith(f"its folder cannot be written: {result_json}: No space left on device (errno 28 ENOSPC)"), reason
    assert "exited without result.json (exit code 1)" in reason
    # the disk's fault, not the trial's: it is queued to run again once there is room, and does not use the budget
    assert by_number[0].user_attrs["requeued"] is True
    assert 0 in [t.user_attrs.get("rerun_of") for t in by_number.values() if t.state == TrialState.WAITING]
    assert [t.number for t in by_number.values() if t.state == TrialState.RUNNING] == []
    assert not (sweep / "trials" / "1").exists()  # no further trial was started into the refusing folder
    assert not (sweep / reserve.RESERVE_FILE).exists()
