"""read_history(path): a PerforatedAI output folder, or a pai-sweep trial folder, as a RunHistory."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pandas as pd

from pai_sweep import trial_files
from pai_sweep.analysis.csvfile import read_numeric_csv
from pai_sweep.analysis.discover import RunFiles, SnapshotFiles, locate, save_names
import pai_sweep.analysis.timeline as timeline
from pai_sweep.analysis.history import KEPT, REJECTED, RunHistory, Snapshot
from pai_sweep.analysis.trial_folder import TRIAL_FILES, add_trial_files
from pai_sweep.errors import AnalysisError

_SCORE_RENAME = {"Epochs": "epoch", "Validation Scores": "val", "Validation Running Scores": "running"}


def read_history(path, save_name: str | None = None) -> RunHistory:
    """Read every file PerforatedAI 3.2.9 (or an older version) wrote.

    A file that cannot be read (truncated, malformed, binary) is left out and named, with its problem, in
    ``missing``; AnalysisError (one line) only when there is no run here or nothing of it can be read.
    """
    path = Path(path)
    folder, trial_dir = _resolve(path)
    if save_name is None and trial_dir is not None and trial_files.PAI_SAVE_NAME in save_names(folder):
        save_name = trial_files.PAI_SAVE_NAME  # the worker's fixed save name
    run = locate(folder, save_name)
    hist = _read_run(run)
    if trial_dir is not None:
        add_trial_files(hist, trial_dir)
    if timeline.mark_in_progress(hist):
        hist.events, hist.anchors = timeline.replay(hist, [int(e) for e in _raw_switches(hist)])
    return hist


def _raw_switches(hist: RunHistory) -> list[int]:
    return [e for _, row in hist.switches.iterrows() for e in (row["epoch"], row["end_epoch"])]


def _resolve(path: Path) -> tuple[Path, Path | None]:
    """(PerforatedAI folder, trial folder or None)."""
    pai = path / trial_files.PAI_SAVE_NAME
    if pai.is_dir() and any((path / f).exists() for f in TRIAL_FILES):
        return pai, path
    if path.name == trial_files.PAI_SAVE_NAME and path.is_dir() and any((path.parent / f).exists() for f in TRIAL_FILES):
        return path, path.parent  # a trial folder's pai/
    if path.is_dir() and not save_names(path):
        # a working directory holding ./<save_name>/ (where PerforatedAI writes)
        subs = [p for p in path.iterdir() if p.is_dir() and p.name in save_names(p)]
        if len(subs) == 1:
            return subs[0], None
    return path, None


def _scores_table(df: pd.DataFrame, path: Path, notes: list[str]) -> pd.DataFrame:
    """Scores.csv -> one row per epoch (epoch, val, running, extras).

    3.2.9 stacks the columns: one block of rows per value column (the epochs counting up again), the
    other cells empty. Older files have one row per epoch with every column filled. An empty or NaN
    cell is a missing value, never a sign of a cut-off file; epochs without a validation score are
    left out (and named in notes).
    """
    if "Epochs" not in df.columns:
        df = df.assign(Epochs=range(len(df)))
    value_cols = [c for c in df.columns if c != "Epochs"]
    no_epoch = df["Epochs"].isna()
    if no_epoch.any():
        notes.append(f"{path.name}: {int(no_epoch.sum())} row(s) without an epoch number, left out")
        df = df[~no_epoch].reset_index(drop=True)
    epochs = df["Epochs"].to_numpy()
    starts = [0] + [i for i in range(1, len(epochs)) if epochs[i] <= epochs[i - 1]]
    blocks = [df.iloc[a:b] for a, b in zip(starts, starts[1:] + [len(df)]) if b > a]
    filled = [[c for c in value_cols if blk[c].notna().any()] for blk in blocks]
    assigned = _block_columns(filled, value_cols) if len(blocks) > 1 or len(value_cols) == 1 else None
    columns: dict[str, pd.Series] = {}
    if assigned is None:  # one row per epoch (older files), or a layout to read column by column
        for col in value_cols:
            sel = df[col].notna()
            s = pd.Series(df.loc[sel, col].to_numpy(), index=df.loc[sel, "Epochs"].astype(int).to_numpy())
            columns[col] = s[~s.index.duplicated(keep="last")]
    else:
        for blk, col in zip(blocks, assigned):
            s = pd.Series(blk[col].to_numpy(), index=blk["Epochs"].astype(int).to_numpy())
            columns[col] = s[~s.index.duplicated(keep="last")]
        lengths = [len(blk) for blk in blocks]
        absent = [c for c in value_cols if c not in columns]
        cut = absent or ([assigned[-1]] if lengths[-1] < max(lengths) else [])
        if cut and not no_epoch.any():  # the blocks end early: what a write cut at a line end leaves
            notes.append(f"{path.name}: the block of {', '.join(cut)} has {0 if absent else lengths[-1]} of {max(lengths)} "
                         "epochs: the file looks truncated; those values are left empty")
    table = pd.DataFrame(columns).sort_index() if columns else pd.DataFrame(index=pd.Index(sorted(set(epochs.astype(int)))))
    table.index.name = "Epochs"
    table = table.reset_index().rename(columns=_SCORE_RENAME)
    for col in ("val", "running"):
        if col not in table.columns:
            table[col] = math.nan
    no_val = table["val"].isna()
    if no_val.any() and not no_val.all():
        shown = ", ".join(str(int(e)) for e in table.loc[no_val, "epoch"][:5]) + (", ..." if no_val.sum() > 5 else "")
        notes.append(f"{path.name}: epoch(s) {shown} have no validation score (empty or NaN cells), left out")
    elif no_val.all() and len(table):
        notes.append(f"{path.name}: no epoch has a validation score (empty or NaN cells): no per-epoch scores")
    return table[~no_val].reset_index(drop=True)


def _block_columns(filled: list[list[str]], value_cols: list[str]) -> list[str] | None:
    """The value column of each stacked block (the one filled; an empty block takes the next unused column in
    header order); None when the blocks are not stacked columns."""
    if len(filled) > len(value_cols) or any(len(f) > 1 for f in filled):
        return None
    named = [f[0] for f in filled if f]
    if len(set(named)) != len(named):
        return None
    spare = iter([c for c in value_cols if c not in named])
    return [f[0] if f else next(spare) for f in filled]


def _read_scores(path: Path, notes: list[str] | None = None) -> pd.DataFrame:
    return _scores_table(read_numeric_csv(path, ("Validation Scores",)), path, [] if notes is None else notes)


def _read_best_arch(files: dict[str, Path]) -> tuple[pd.DataFrame, str] | None:
    """The best-architecture table (params, val, extras) and its format; None when absent."""
    if "best_arch" in files:
        df = read_numeric_csv(files["best_arch"], ("Param Counts", "Max Valid Scores"))
        fmt = "3.2.9"
    elif "best_test" in files:
        df = read_numeric_csv(files["best_test"], ("Param Counts", "Max Valid Scores"))
        if "Test" not in df.columns:
            df = df.rename(columns={"Max Test Scores": "Test"})
        fmt = "legacy"
    else:
        return None
    counts = df["Param Counts"]
    df["Param Counts"] = counts.where(counts.abs() < 2**53).round()  # a parameter count is whole and finite
    return df.rename(columns={"Param Counts": "params", "Max Valid Scores": "val"}), fmt


def _column(files: dict[str, Path], kind: str, required: tuple[str, ...], col: str) -> list:
    if kind not in files:
        return []
    df = read_numeric_csv(files[kind], required)
    return [int(v) for v in df[col].tolist() if math.isfinite(v)]  # an empty cell is no value


def _unreadable(problems: list[str], fn, *args, default=None):
    """fn(*args), or default with the file's one-line problem added to problems when it cannot be read."""
    try:
        return fn(*args)
    except AnalysisError as exc:
        problems.append(f"{exc}; left out of the analysis")
        return default


def _read_snapshot(snap: SnapshotFiles, problems: list[str]) -> Snapshot:
    f = dict(snap.files)
    scores = _unreadable(problems, _read_scores, f["scores"]) if "scores" in f else None
    arch = _unreadable(problems, _read_best_arch, f)
    return Snapshot(
        kind=snap.kind,
        index=snap.index,
        timestamp=snap.timestamp,
        scores=scores if scores is not None else pd.DataFrame(columns=["epoch", "val", "running"]),
        best_arch=arch[0] if arch else pd.DataFrame(columns=["params", "val"]),
        switch_epochs=_unreadable(problems, _column, f, "switch_epochs", ("Switch Epoch",), "Switch Epoch", default=[]),
        param_counts=_unreadable(problems, _column, f, "param_counts", ("Param Count",), "Param Count", default=[]),
        files=sorted(p.name for p in f.values()),
    )


def _snapshot_order(s: Snapshot) -> tuple:
    # A rejected try of dendrite d has d+1 architecture rows, like the switch that adds d+1: the try comes first.
    kind_rank = {"rejected": 0, "before_switch": 1, "before_final": 2}[s.kind]
    stamp = s.timestamp or ""
    if stamp:  # dd.mm.YYYY.HH.MM.SS -> sortable
        d, m, y, hh, mm, ss = stamp.split(".")
        stamp = f"{y}{m}{d}{hh}{mm}{ss}"
    return (len(s.best_arch), kind_rank, stamp, s.index or 0)


def _read_run(run: RunFiles) -> RunHistory:
    f = dict(run.files)
    missing: list[str] = []  # what the analysis lacks: absent files, then unreadable ones and odd cells
    problems: list[str] = []  # one line per file that could not be read
    s = run.save_name
    notes: list[str] = []
    scores = _unreadable(problems, _read_scores, f["scores"], notes) if "scores" in f else None
    if scores is None:
        if "scores" not in f:
            missing.append(f"{s}Scores.csv is missing: no per-epoch scores")
        scores = pd.DataFrame(columns=["epoch", "val", "running"])
    elif scores.empty and not notes:
        missing.append(f"{f['scores'].name} has only a header: no epoch was recorded")
    missing += notes
    extras = [c for c in scores.columns if c not in ("epoch", "val", "running")]

    raw_switch = _unreadable(problems, _column, f, "switch_epochs", ("Switch Epoch",), "Switch Epoch", default=[])
    raw_params = _unreadable(problems, _column, f, "param_counts", ("Param Count",), "Param Count", default=[])
    if "switch_epochs" not in f:
        missing.append(f"{s}switch_epochs.csv is missing: switch epochs unknown")
    if "param_counts" not in f:
        missing.append(f"{s}param_counts.csv is missing: parameter counts per architecture unknown")
    switches = pd.DataFrame(
        [
            {"dendrites": i // 2 + 1, "epoch": raw_switch[i], "end_epoch": raw_switch[min(i + 1, len(raw_switch) - 1)]}
            for i in range(0, len(raw_switch), 2)
        ],
        columns=["dendrites", "epoch", "end_epoch"],
    )
    params = pd.DataFrame(
        [{"dendrites": d, "params": raw_params[min(2 * d, len(raw_params) - 1)]} for d in range((len(raw_params) + 1) // 2)],
        columns=["dendrites", "params"],
    )
    if not scores.empty:
        epochs = scores["epoch"].to_numpy()
        scores["dendrites"] = [int(sum(1 for e in switches["epoch"] if e < ep)) for ep in epochs]
    else:
        scores["dendrites"] = pd.Series(dtype=int)

    snapshots = sorted((_read_snapshot(sn, problems) for sn in run.snapshots), key=_snapshot_order)
    arch = _unreadable(problems, _read_best_arch, f)
    fmt = arch[1] if arch else "3.2.9"
    best_arch = _best_arch_table(arch[0] if arch else None, snapshots, f, run.folder)
    if arch is None:
        if "best_arch" not in f and "best_test" not in f:
            missing.append(f"{s}_best_arch_scores.csv is missing: architectures rebuilt from the scores")
        best_arch = _best_arch_from_scores(scores, params, _maximizing(f))
    elif arch[0].empty:
        missing.append(f"{s}_best_arch_scores.csv has only a header: no architecture finished an epoch")

    lr = _unreadable(problems, _read_lr, f["learning_rate"]) if "learning_rate" in f else None
    if "learning_rate" not in f:
        missing.append(f"{s}learning_rate.csv is missing (drawing_extra_graphs off?): no learning-rate analysis")
    if lr is None:
        lr = pd.DataFrame(columns=["epoch", "lr"])
    times = _unreadable(problems, _read_times, f["times"]) if "times" in f else None
    if times is None:
        times = pd.DataFrame(columns=["epoch", "normal_seconds", "pai_seconds"])
    pb = _unreadable(problems, _read_pb, f["pb_scores"]) if "pb_scores" in f else None
    if pb is None:
        pb = pd.DataFrame(columns=["epoch"])
    pai_config = None
    if "config" in f:
        pai_config = _read_json_object(f["config"], missing)
    missing += problems
    if problems and scores.empty and best_arch.empty:
        raise AnalysisError("nothing of this run could be read: " + " | ".join(problems))

    hist = RunHistory(
        folder=run.folder,
        save_name=s,
        format=fmt,
        scores=scores,
        switches=switches,
        params=params,
        best_arch=best_arch,
        lr=lr,
        times=times,
        pb_scores=pb,
        events=pd.DataFrame(columns=["epoch", "kind", "dendrites", "params", "val"]),
        snapshots=snapshots,
        extras=extras,
        files=sorted({p.name for p in f.values()} | {n for sn in snapshots for n in sn.files}),
        missing=missing,
        pai_config=pai_config,
    )
    hist.events, hist.anchors = timeline.replay(hist, raw_switch)
    hist.ended_by = timeline.ended_by(hist)
    return hist


def _read_lr(path: Path) -> pd.DataFrame:
    lr = read_numeric_csv(path, ("Epochs",))
    if len(lr.columns) < 2:
        raise AnalysisError(f"{path}: no learning-rate column next to Epochs: the file is malformed")
    lr = lr.rename(columns={"Epochs": "epoch", [c for c in lr.columns if c != "Epochs"][0]: "lr"})[["epoch", "lr"]]
    return lr.dropna().reset_index(drop=True)


def _read_times(path: Path) -> pd.DataFrame:
    return read_numeric_csv(path, ("Epochs",)).rename(
        columns={"Epochs": "epoch", "Normal Epoch Times": "normal_seconds", "PAI Epoch Times": "pai_seconds"}
    )


def _read_pb(path: Path) -> pd.DataFrame:
    raw = read_numeric_csv(path)
    keep = {c: _module_id(c) for c in raw.columns if c.startswith("Best ever")}
    if "Epochs" not in raw or len(set(keep.values())) != len(keep):
        return pd.DataFrame(columns=["epoch"])
    return raw.rename(columns={"Epochs": "epoch", **keep})[["epoch", *keep.values()]]


def _read_json_object(path: Path, missing: list[str]) -> dict | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:  # UnicodeDecodeError is a ValueError
        missing.append(f"{path}: not readable JSON ({type(exc).__name__}): settings unknown; left out of the analysis")
        return None
    if not isinstance(data, dict):
        missing.append(f"{path}: not a JSON object: settings unknown; left out of the analysis")
        return None
    return data


def _module_id(column: str) -> str:
    m = re.search(r"Layer\s+(\S+)$", column)
    return m.group(1) if m else column


def _best_arch_table(df, snapshots, files, folder) -> pd.DataFrame:
    rows = []
    source = next((files[k].name for k in ("best_arch", "best_test") if k in files), "")
    if df is not None:
        for i, rec in enumerate(df.to_dict("records")):
            rows.append({"dendrites": i, **rec, "accepted": True, "status": KEPT, "source": source})
    for snap in snapshots:
        if snap.kind != "rejected" or snap.best_arch.empty:
            continue
        rec = snap.best_arch.iloc[-1].to_dict()
        name = next((n for n in snap.files if n.endswith("_best_arch_scores.csv") or n.endswith("best_test_scores.csv")), "")
        rows.append({"dendrites": len(snap.best_arch) - 1, **rec, "accepted": False, "status": REJECTED, "source": name})
    return _arch_frame(rows)


def _arch_frame(rows: list[dict]) -> pd.DataFrame:
    cols = ["dendrites", "params", "val"]
    table = pd.DataFrame(rows)
    if table.empty:
        return pd.DataFrame(columns=[*cols, "accepted", "status", "source"])
    extra = [c for c in table.columns if c not in (*cols, "accepted", "status", "source")]
    table = table[[*cols, *extra, "accepted", "status", "source"]]
    table["dendrites"] = table["dendrites"].astype(int)
    table["params"] = table["params"].astype("Int64")
    table["accepted"] = table["accepted"].astype(bool)
    return table


def _maximizing(files: dict[str, Path]) -> bool:
    try:
        return bool(json.loads(files["config"].read_text()).get("maximizing_score", True))
    except (KeyError, OSError, ValueError, AttributeError):
        return True


def _best_arch_from_scores(scores, params, maximizing: bool) -> pd.DataFrame:
    """Without _best_arch_scores.csv: the best epoch of each architecture segment, as PerforatedAI computes it."""
    rows = []
    if scores.empty:
        return _arch_frame(rows)
    pmap = dict(zip(params["dendrites"], params["params"]))
    for d, seg in scores.groupby("dendrites"):
        best = seg.loc[seg["val"].idxmax() if maximizing else seg["val"].idxmin()]
        extra = {c: best[c] for c in seg.columns if c not in ("epoch", "val", "running", "dendrites")}
        rows.append({"dendrites": int(d), "params": pmap.get(d), "val": best["val"], **extra,
                     "accepted": True, "status": KEPT, "source": "Scores.csv"})
    return _arch_frame(rows)
