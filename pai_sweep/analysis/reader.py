"""read_history(path): a PerforatedAI output folder, or a pai-sweep trial folder, as a RunHistory."""

from __future__ import annotations

import dataclasses
import json
import math
import re
from pathlib import Path

import pandas as pd
import yaml

from pai_sweep import trial_files
from pai_sweep.analysis.csvfile import read_numeric_csv
from pai_sweep.analysis.discover import RunFiles, SnapshotFiles, locate, save_names
from pai_sweep.analysis import timeline
from pai_sweep.analysis.history import KEPT, REJECTED, RunHistory, Snapshot
from pai_sweep.errors import AnalysisError

_SCORE_RENAME = {"Epochs": "epoch", "Validation Scores": "val", "Validation Running Scores": "running"}
_TRIAL_FILES = (trial_files.RUN_CONFIG, trial_files.METRICS, trial_files.RESULT)


def read_history(path, save_name: str | None = None) -> RunHistory:
    """Read every file PerforatedAI 3.2.9 (or an older version) wrote; AnalysisError naming the file if one is bad."""
    path = Path(path)
    folder, trial_dir = _resolve(path)
    run = locate(folder, save_name)
    hist = _read_run(run)
    if trial_dir is not None:
        _add_trial(hist, trial_dir)
    if timeline.mark_in_progress(hist):
        hist.events = timeline.events(hist, [int(e) for e in _raw_switches(hist)])
    return hist


def _raw_switches(hist: RunHistory) -> list[int]:
    return [e for _, row in hist.switches.iterrows() for e in (row["epoch"], row["end_epoch"])]


def _resolve(path: Path) -> tuple[Path, Path | None]:
    """(PerforatedAI folder, trial folder or None)."""
    pai = path / trial_files.PAI_SAVE_NAME
    if pai.is_dir() and any((path / f).exists() for f in _TRIAL_FILES):
        return pai, path
    if path.is_dir() and not save_names(path):
        # a working directory holding ./<save_name>/ (where PerforatedAI writes)
        subs = [p for p in path.iterdir() if p.is_dir() and p.name in save_names(p)]
        if len(subs) == 1:
            return subs[0], None
    return path, None


def _scores_table(df: pd.DataFrame, path: Path) -> pd.DataFrame:
    """Stacked Scores.csv (one block of rows per column) -> one row per epoch."""
    if "Epochs" not in df.columns:
        df = df.assign(Epochs=range(len(df)))
    if df["Epochs"].isna().any():
        raise AnalysisError(f"{path}: a row has no epoch number: the file is malformed")
    columns = {}
    for col in df.columns:
        if col == "Epochs":
            continue
        sel = df[col].notna()
        s = pd.Series(df.loc[sel, col].to_numpy(), index=df.loc[sel, "Epochs"].astype(int).to_numpy())
        columns[col] = s[~s.index.duplicated(keep="last")]
    if "Validation Running Scores" in columns and len(columns["Validation Running Scores"]) != len(columns.get("Validation Scores", [])):
        raise AnalysisError(f"{path}: the validation and running-score blocks differ in length: the file is truncated")
    table = pd.DataFrame(columns).sort_index()
    table.index.name = "Epochs"
    table = table.reset_index().rename(columns=_SCORE_RENAME)
    for col in ("val", "running"):
        if col not in table.columns:
            table[col] = math.nan
    return table


def _read_scores(path: Path) -> pd.DataFrame:
    return _scores_table(read_numeric_csv(path, ("Validation Scores",)), path)


def _read_best_arch(files: dict[str, Path]) -> tuple[pd.DataFrame, str] | None:
    """The best-architecture table (params, val, extras) and its format; None when absent."""
    if "best_arch" in files:
        df = read_numeric_csv(files["best_arch"], ("Param Counts", "Max Valid Scores"))
        fmt = "3.2.9"
    elif "best_test" in files:
        df = read_numeric_csv(files["best_test"], ("Param Counts", "Max Valid Scores"))
        df = df.rename(columns={"Max Test Scores": "Test"})
        fmt = "legacy"
    else:
        return None
    return df.rename(columns={"Param Counts": "params", "Max Valid Scores": "val"}), fmt


def _column(files: dict[str, Path], kind: str, required: tuple[str, ...], col: str) -> list:
    if kind not in files:
        return []
    df = read_numeric_csv(files[kind], required)
    return [v for v in df[col].tolist()]


def _read_snapshot(snap: SnapshotFiles) -> Snapshot:
    f = snap.files
    scores = _read_scores(f["scores"]) if "scores" in f else pd.DataFrame(columns=["epoch", "val", "running"])
    arch = _read_best_arch(f)
    return Snapshot(
        kind=snap.kind,
        index=snap.index,
        timestamp=snap.timestamp,
        scores=scores,
        best_arch=arch[0] if arch else pd.DataFrame(columns=["params", "val"]),
        switch_epochs=[int(v) for v in _column(f, "switch_epochs", ("Switch Epoch",), "Switch Epoch")],
        param_counts=[int(v) for v in _column(f, "param_counts", ("Param Count",), "Param Count")],
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
    f = run.files
    missing: list[str] = []
    s = run.save_name
    scores = _read_scores(f["scores"]) if "scores" in f else pd.DataFrame(columns=["epoch", "val", "running"])
    if "scores" not in f:
        missing.append(f"{s}Scores.csv is missing: no per-epoch scores")
    elif scores.empty:
        missing.append(f"{s}Scores.csv has only a header: no epoch was recorded")
    extras = [c for c in scores.columns if c not in ("epoch", "val", "running")]

    raw_switch = [int(v) for v in _column(f, "switch_epochs", ("Switch Epoch",), "Switch Epoch")]
    raw_params = [int(v) for v in _column(f, "param_counts", ("Param Count",), "Param Count")]
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

    snapshots = sorted((_read_snapshot(sn) for sn in run.snapshots), key=_snapshot_order)
    arch = _read_best_arch(f)
    fmt = arch[1] if arch else "3.2.9"
    best_arch = _best_arch_table(arch[0] if arch else None, snapshots, f, run.folder)
    if arch is None:
        missing.append(f"{s}_best_arch_scores.csv is missing: architectures rebuilt from the scores")
        best_arch = _best_arch_from_scores(scores, params, _maximizing(f))
    elif arch[0].empty:
        missing.append(f"{s}_best_arch_scores.csv has only a header: no architecture finished an epoch")

    lr = pd.DataFrame(columns=["epoch", "lr"])
    if "learning_rate" in f:
        lr = read_numeric_csv(f["learning_rate"], ("Epochs",))
        lr = lr.rename(columns={"Epochs": "epoch", lr.columns[1]: "lr"})[["epoch", "lr"]]
    else:
        missing.append(f"{s}learning_rate.csv is missing (drawing_extra_graphs off?): no learning-rate analysis")
    times = pd.DataFrame(columns=["epoch", "normal_seconds", "pai_seconds"])
    if "times" in f:
        times = read_numeric_csv(f["times"], ("Epochs",)).rename(
            columns={"Epochs": "epoch", "Normal Epoch Times": "normal_seconds", "PAI Epoch Times": "pai_seconds"}
        )
    pb = pd.DataFrame(columns=["epoch"])
    if "pb_scores" in f:
        raw = read_numeric_csv(f["pb_scores"])
        keep = {c: _module_id(c) for c in raw.columns if c.startswith("Best ever")}
        pb = raw.rename(columns={"Epochs": "epoch", **keep})[["epoch", *keep.values()]] if "Epochs" in raw else pb
    pai_config = None
    if "config" in f:
        try:
            pai_config = json.loads(f["config"].read_text())
        except ValueError:
            missing.append(f"{f['config'].name} is not valid JSON: settings unknown")

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
    hist.events = timeline.events(hist, raw_switch)
    hist.ended_by = timeline.ended_by(hist)
    return hist


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
    except (KeyError, OSError, ValueError):
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


def _add_trial(hist: RunHistory, trial_dir: Path) -> None:
    hist.trial_dir = trial_dir
    records = trial_files.read_metrics(trial_dir)
    if records:
        hist.metrics = pd.DataFrame([dataclasses.asdict(r) for r in records])
    else:
        hist.missing.append(f"{trial_files.METRICS} is missing or empty: no per-epoch worker records")
    result = trial_files.read_result(trial_dir)
    if result is not None:
        hist.result = dataclasses.asdict(result)
        if result.status != trial_files.STATUS_COMPLETE:
            hist.ended_by = result.status  # failed or pruned
        elif result.reason == "epoch_cap":
            hist.ended_by = "epoch_cap"
        elif hist.ended_by == "unknown":
            hist.ended_by = "pai_complete"
    cfg_path = trial_dir / trial_files.RUN_CONFIG
    if cfg_path.exists():
        try:
            hist.run_config = yaml.safe_load(cfg_path.read_text()) or {}
        except yaml.YAMLError:
            hist.missing.append(f"{cfg_path.name} is not valid YAML: the run's settings are unknown")
