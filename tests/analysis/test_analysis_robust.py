"""`pai-sweep analyze` on any folder: trial folders with snapshot files, partial, old-spelled and corrupt folders.

The property tests derive broken folders from the real PerforatedAI fixtures and check what a user sees:
exit code 0 (a partial analysis) or 2 (one line), never a traceback, never a wrong "truncated" claim.
"""

from __future__ import annotations

import contextlib
import io
import json
import random
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from run_builder import CAPACITY_RUN, HISTORY_RUN

from pai_sweep import trial_files
from pai_sweep.analysis import read_history
from pai_sweep.cli import main

STAMP = "22.11.2026.14.48.00"


def _trial_folder(root: Path, snapshot_copies: bool = True) -> Path:
    """A pai-sweep trial folder around the real history run (save name "pai", as the worker writes it), with the
    timestamped copies PerforatedAI's learning-rate search adds (``pai_<date>_PBCount_<k>_startSteps_<m>*``)."""
    trial = root / "trial"
    (trial / "pai").mkdir(parents=True)
    for f in HISTORY_RUN.iterdir():
        shutil.copy(f, trial / "pai" / ("pai" + f.name[len("real"):]))
    if snapshot_copies:
        for f in HISTORY_RUN.glob("real_beforeSwitch_0*"):
            shutil.copy(f, trial / "pai" / f.name.replace("real_beforeSwitch_0", f"pai_{STAMP}_PBCount_1_startSteps_0"))
    for e in range(38):
        trial_files.append_metrics(trial, trial_files.EpochRecord(epoch=e, val=60.0 + e, lr=0.01))
    trial_files.write_result(trial, trial_files.TrialResult(status="complete", reason="pai_complete", best_val=96.3))
    (trial / trial_files.RUN_CONFIG).write_text("dendrites: {max_dendrites: 3, n_epochs_to_switch: 3}\n")
    return trial


def _run(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


def test_trial_folder_with_snapshot_copies_needs_no_save_name(tmp_path):
    trial = _trial_folder(tmp_path)
    assert any("_PBCount_" in p.name for p in (trial / "pai").iterdir())
    for path in (trial, trial / "pai"):
        code, out, err = _run(["analyze", str(path), "--out", str(tmp_path / "o")])
        assert (code, err) == (0, ""), err
        doc = json.loads((tmp_path / "o" / "findings.json").read_text())
        assert doc["source"]["save_name"] == "pai" and doc["source"]["trial_dir"] == str(trial)
        assert doc["summary"]["dendrites"] == 1 and doc["summary"]["rejected_tries"] == 2  # the copies are not tries
        assert doc["summary"]["epochs"] == 38  # metrics.jsonl: the trial's files were read too
    h = read_history(trial / "pai")
    assert not any("PBCount" in n for n in h.files)


def test_folder_named_after_its_run_picks_that_run(tmp_path):
    both = tmp_path / "real"
    shutil.copytree(HISTORY_RUN, both)
    shutil.copytree(CAPACITY_RUN, both, dirs_exist_ok=True)
    assert read_history(both).save_name == "real"  # PerforatedAI writes ./<save_name>/


def test_only_a_scores_file_gives_a_partial_analysis(tmp_path):
    (tmp_path / "run").mkdir()
    shutil.copy(HISTORY_RUN / "realScores.csv", tmp_path / "run")
    code, out, err = _run(["analyze", str(tmp_path / "run"), "--out", str(tmp_path / "o")])
    assert (code, err) == (0, "")
    assert "realswitch_epochs.csv is missing" in out and "architectures rebuilt from the scores" in out
    doc = json.loads((tmp_path / "o" / "findings.json").read_text())
    assert doc["summary"]["kept_epochs"] == 20 and round(doc["summary"]["best_score"], 2) == 96.30


def test_binary_metrics_is_one_line_not_a_traceback(tmp_path):
    trial = _trial_folder(tmp_path)
    (trial / trial_files.METRICS).write_bytes(bytes(range(256)) * 4)
    (trial / trial_files.RESULT).write_bytes(b"\xff\xfe\x00garbage")
    code, out, err = _run(["analyze", str(trial), "--out", str(tmp_path / "o")])
    assert (code, err) == (0, "")
    assert "metrics.jsonl: no line is a JSON epoch record (the file is corrupt)" in out
    assert "result.json: not a readable completion record" in out
    assert "epochs run              38" in out  # replayed from PerforatedAI's snapshots instead


def test_nan_and_empty_score_cells_are_missing_values_not_truncation(tmp_path):
    run = shutil.copytree(HISTORY_RUN, tmp_path / "run")
    lines = (run / "realScores.csv").read_text().splitlines()
    lines[4] = "3,nan,,"  # a NaN validation score
    lines[6] = "5,,,"  # an empty one
    lines[30] = "9,,,"  # an empty running score
    (run / "realScores.csv").write_text("\n".join(lines) + "\n")
    code, out, err = _run(["analyze", str(run), "--out", str(tmp_path / "o")])
    assert (code, err) == (0, "")
    assert "truncated" not in out and "only a header" not in out
    assert "realScores.csv: epoch(s) 3, 5 have no validation score (empty or NaN cells), left out" in out
    assert len(read_history(run).scores) == 18


def test_a_scores_file_cut_at_a_line_end_is_named_truncated(tmp_path):
    run = shutil.copytree(HISTORY_RUN, tmp_path / "run")
    lines = (run / "realScores.csv").read_text().splitlines()
    (run / "realScores.csv").write_text("\n".join(lines[:50]) + "\n")  # the Train block stops after 9 epochs
    code, out, _ = _run(["analyze", str(run), "--out", str(tmp_path / "o")])
    assert code == 0
    assert "realScores.csv: the block of Train has 9 of 20 epochs: the file looks truncated" in out


def test_older_spellings_are_read(tmp_path):
    run = tmp_path / "old"
    run.mkdir()
    for f in HISTORY_RUN.iterdir():
        name = (f.name.replace("realScores", "real_scores").replace("realswitch_epochs", "real_switch_epochs")
                .replace("realparam_counts", "real_param_counts").replace("reallearning_rate", "real_learning_rate")
                .replace("Best PBScores", "Best_PBScores").replace("_22.11.2026.14.48.09", ""))
        shutil.copy(f, run / name)
    h = read_history(run)
    assert h.save_name == "real" and not h.missing
    assert len(h.scores) == 20 and h.switch_epochs == [13] and list(h.params["params"]) == [1210, 2446, 2446][:2]
    assert sorted(h.rejected["params"].astype(int)) == [2446, 3760]  # both tries, with and without a timestamp


def test_nothing_readable_is_one_line_exit_2(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "xScores.csv").write_bytes(b"Epochs,Validation Scores\n0,\xff\xfe\n")
    code, out, err = _run(["analyze", str(tmp_path / "run"), "--out", str(tmp_path / "o")])
    assert code == 2 and out == ""
    assert err.startswith("pai-sweep: error: nothing of this run could be read: ") and err.count("\n") == 1
    assert "xScores.csv: not a text file" in err


# ---- property tests: broken folders derived from the real ones --------------------------------------------

MUTATIONS = ("truncate", "delete", "nan", "empty", "ragged", "binary", "header_only", "shuffle_columns", "respell")
_RESPELL = (("Scores.csv", "_scores.csv"), ("switch_epochs.csv", "_switch_epochs.csv"), ("Best PBScores", "Best_PBScores"),
            ("param_counts.csv", "_param_counts.csv"), ("learning_rate.csv", "_learning_rate.csv"))


def _cells(text: str) -> list[list[str]]:
    return [line.split(",") for line in text.splitlines()]


def _join(rows: list[list[str]]) -> str:
    return "".join(",".join(r) + "\n" for r in rows)


def _mutate(path: Path, how: str, rnd: random.Random) -> str | None:
    """Break one file; returns the name a "truncated" claim may then name (respell: the new name), else None."""
    data = path.read_bytes()
    if how == "delete":
        path.unlink()
        return None
    if how == "truncate" and len(data) > 1:
        path.write_bytes(data[: rnd.randrange(1, len(data))])
        return path.name
    if how == "binary":
        at = rnd.randrange(0, max(1, len(data) - 1))  # the final line end stays: garbage, not a cut-off write
        path.write_bytes(data[:at] + bytes(rnd.randrange(256) for _ in range(rnd.randint(1, 40))) + data[at:])
        return None
    if how == "respell":
        for old, new in _RESPELL:
            if old in path.name:
                path.rename(path.with_name(path.name.replace(old, new)))
                return path.name.replace(old, new) if path.name.replace(old, new) else None
        return None
    try:
        rows = _cells(data.decode())
    except UnicodeDecodeError:
        return None
    if how == "header_only":
        path.write_text(_join(rows[:1]))
        return None
    if len(rows) < 2 or path.suffix != ".csv":
        return None
    r = rnd.randrange(1, len(rows))
    c = rnd.randrange(len(rows[r]))
    if how in ("nan", "empty"):
        rows[r][c] = "nan" if how == "nan" else ""
    elif how == "ragged":
        rows[r] = rows[r] + ["1"] if rnd.random() < 0.5 or len(rows[r]) < 2 else rows[r][:-1]
    elif how == "shuffle_columns":
        order = list(range(len(rows[0])))
        rnd.shuffle(order)
        rows = [[row[i] for i in order] if len(row) == len(order) else row for row in rows]
    path.write_text(_join(rows))
    return None


def _broken_folder(root: Path, source: str, plan: list[tuple[int, str]], seed: int) -> tuple[Path, set[str]]:
    if source == "trial":
        target = _trial_folder(root)
        files = sorted(p for p in (target / "pai").iterdir()) + [target / n for n in (trial_files.METRICS, trial_files.RESULT, trial_files.RUN_CONFIG)]
    else:
        target = shutil.copytree(HISTORY_RUN if source == "history" else CAPACITY_RUN, root / "run")
        files = sorted(target.iterdir())
    rnd = random.Random(seed)
    cut = set()
    for index, how in plan:
        path = files[index % len(files)]
        if path.exists():
            name = _mutate(path, how, rnd)
            if how == "respell" and name:
                files[index % len(files)] = path.with_name(name)
                if path.name in cut:  # a cut file under its old spelling
                    cut.add(name)
            elif name:
                cut.add(name)
    return target, cut


def _assert_honest(code: int, out: str, err: str, cut: set[str]) -> None:
    assert code in (0, 2), (code, out[-2000:], err[-2000:])
    assert "Traceback" not in out + err
    if code == 2:
        assert err.startswith("pai-sweep: error: ") and err.count("\n") == 1, err
    for line in (out + err).splitlines():
        if "truncated" in line:
            assert any(name in line for name in cut), f"wrong truncation claim: {line} (cut: {cut})"


folders = st.tuples(
    st.sampled_from(["history", "capacity", "trial"]),
    st.lists(st.tuples(st.integers(0, 60), st.sampled_from(MUTATIONS)), min_size=1, max_size=6),
    st.integers(0, 2**32 - 1),
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(folders)
def test_any_broken_folder_gives_an_analysis_or_one_line(case):
    source, plan, seed = case
    with tempfile.TemporaryDirectory() as tmp:
        folder, cut = _broken_folder(Path(tmp), source, plan, seed)
        code, out, err = _run(["analyze", str(folder), "--out", str(Path(tmp) / "out")])
        _assert_honest(code, out, err, cut)
        if code == 0:
            json.loads((Path(tmp) / "out" / "findings.json").read_text())


def test_broken_folder_as_a_real_command(tmp_path):
    trial = _trial_folder(tmp_path)
    rnd = random.Random(7)
    _mutate(trial / "pai" / "paiScores.csv", "nan", rnd)
    _mutate(trial / "pai" / "pai_best_arch_scores.csv", "ragged", rnd)
    _mutate(trial / trial_files.METRICS, "binary", rnd)
    (trial / "pai" / "paiswitch_epochs.csv").write_bytes(b"\x00\x9f\xff" * 10)
    cut = {_mutate(trial / "pai" / "paiparam_counts.csv", "truncate", rnd)}
    proc = subprocess.run([sys.executable, "-m", "pai_sweep", "analyze", str(trial), "--out", str(tmp_path / "o")],
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    _assert_honest(proc.returncode, proc.stdout, proc.stderr, cut)
    assert proc.returncode == 0
    assert "pai_best_arch_scores.csv: line 3 has 4 fields, the header has 3: the file is malformed" in proc.stdout
    assert "paiswitch_epochs.csv: not a text file" in proc.stdout
    # where the cut falls depends on the random draws before it (and so on the other files' sizes): any line
    assert re.search(r"paiparam_counts\.csv: line \d+ is incomplete \(no line end\): the file is truncated", proc.stdout)
