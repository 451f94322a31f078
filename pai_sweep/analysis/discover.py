"""Find the PerforatedAI files in a folder: the save name, the main files and the snapshots.

3.2.9 names every file ``{save_name}{suffix}`` with no separator (``realScores.csv``,
``realBest PBScores.csv`` with a space), snapshots as ``{s}_beforeSwitch_{k}{suffix}``,
``{s}_{dd.mm.YYYY.HH.MM.SS}_noImprove_lr_{n}{suffix}`` and ``{s}before_final{suffix}``; the learning-rate
search at a switch adds ``{s}_{dd.mm.YYYY.HH.MM.SS}_PBCount_{k}_startSteps_{m}{suffix}``, which the analysis
ignores (as any other timestamped copy). Older versions and the analysis guide use ``{s}best_test_scores.csv``,
camelCase names and underscores (``{s}_scores.csv``, ``{s}Best_PBScores.csv``, ``{s}_noImprove_lr_{n}``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from pai_sweep.errors import AnalysisError

# kind -> accepted suffixes, longest first within the whole table (see _split)
SUFFIXES = {
    "pb_scores": ("Best PBScores.csv", "Best_PBScores.csv"),
    "best_arch": ("_best_arch_scores.csv",),
    "best_test": ("best_test_scores.csv",),  # older versions
    "scores": ("Scores.csv", "_scores.csv"),
    "switch_epochs": ("switch_epochs.csv", "_switch_epochs.csv", "switchEpochs.csv"),
    "param_counts": ("param_counts.csv", "_param_counts.csv", "paramCounts.csv"),
    "learning_rate": ("learning_rate.csv", "_learning_rate.csv", "learningRate.csv", "LearningRate.csv"),
    "times": ("Times.csv", "_times.csv"),
    "config": ("_config.json",),
}
_ORDERED = sorted(((s, k) for k, ss in SUFFIXES.items() for s in ss), key=lambda p: -len(p[0]))
_MAIN_KINDS = ("scores", "best_arch", "best_test", "switch_epochs", "param_counts")
_BEFORE_SWITCH = re.compile(r"^(?P<save>.+)_beforeSwitch_(?P<k>\d+)$")
_STAMP = r"\d\d\.\d\d\.\d{4}\.\d\d\.\d\d\.\d\d"  # dd.mm.YYYY.HH.MM.SS
_NO_IMPROVE = re.compile(rf"^(?P<save>.+?)(?:_(?P<ts>{_STAMP}))?_noImprove_lr_(?P<n>\d+)$")
# any other timestamped copy (the learning-rate search's _PBCount_k_startSteps_m): not a run of its own
_STAMPED = re.compile(rf"^(?P<save>.+?)_(?P<ts>{_STAMP})_.+$")
_BEFORE_FINAL = re.compile(r"^(?P<save>.+?)_?before_final$")


@dataclass
class SnapshotFiles:
    kind: str  # before_switch | rejected | before_final
    index: int | None  # k of _beforeSwitch_k; n of _noImprove_lr_n
    timestamp: str | None  # dd.mm.YYYY.HH.MM.SS of a rejected try
    files: dict[str, Path] = field(default_factory=dict)


@dataclass
class RunFiles:
    folder: Path
    save_name: str
    files: dict[str, Path]  # kind -> path of the main (final) file
    snapshots: list[SnapshotFiles]


def _split(name: str) -> tuple[str, str] | None:
    """'realScores.csv' -> ('real', 'scores'); None for a name PerforatedAI does not write."""
    for suffix, kind in _ORDERED:
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)], kind
    return None


def _classify(prefix: str) -> tuple[str, str, int | None, str | None]:
    """A file prefix -> (save name, snapshot kind or 'main', index, timestamp)."""
    m = _BEFORE_SWITCH.match(prefix)
    if m:
        return m["save"], "before_switch", int(m["k"]), None
    m = _NO_IMPROVE.match(prefix)
    if m:
        return m["save"], "rejected", int(m["n"]), m["ts"]
    m = _STAMPED.match(prefix)
    if m:
        return m["save"], "ignored", None, m["ts"]
    m = _BEFORE_FINAL.match(prefix)
    if m:
        return m["save"], "before_final", None, None
    return prefix, "main", None, None


def save_names(folder: Path) -> list[str]:
    """Every save name with a main results file in folder."""
    names = set()
    for path in folder.iterdir():
        split = _split(path.name) if path.is_file() else None
        if split:
            save, kind, _, _ = _classify(split[0])
            if kind == "main" and split[1] in _MAIN_KINDS:
                names.add(save)
    return sorted(names)


def locate(folder: Path, save_name: str | None = None) -> RunFiles:
    """The files of one run in folder; AnalysisError (one line) when there is none or several."""
    folder = Path(folder)
    if not folder.exists():
        raise AnalysisError(f"{folder}: no such folder")
    if not folder.is_dir():
        raise AnalysisError(f"{folder}: not a folder; give the PerforatedAI output folder (./<save_name>/)")
    entries = list(folder.iterdir())
    if not entries:
        raise AnalysisError(f"{folder}: the folder is empty; give the folder PerforatedAI wrote (./<save_name>/)")
    names = save_names(folder)
    if not names:
        raise AnalysisError(
            f"{folder}: no PerforatedAI output here (no <save_name>Scores.csv or <save_name>_best_arch_scores.csv); "
            "give the folder PerforatedAI wrote (./<save_name>/)"
        )
    if save_name is None and len(names) > 1 and folder.name in names:
        save_name = folder.name  # PerforatedAI writes ./<save_name>/: the folder's own run
    if save_name is None:
        if len(names) > 1:
            raise AnalysisError(f"{folder}: several runs in one folder (save names: {', '.join(names)}); pick one with --save-name")
        save_name = names[0]
    elif save_name not in names:
        raise AnalysisError(f"{folder}: no run named {save_name!r} here; save names found: {', '.join(names)}")

    files: dict[str, Path] = {}
    snaps: dict[tuple, SnapshotFiles] = {}
    for path in sorted(entries):
        split = _split(path.name) if path.is_file() else None
        if not split:
            continue
        save, kind, index, ts = _classify(split[0])
        if save != save_name:
            continue
        if kind == "ignored":
            continue
        if kind == "main":
            files.setdefault(split[1], path)
        else:
            snap = snaps.setdefault((kind, index, ts), SnapshotFiles(kind, index, ts))
            snap.files.setdefault(split[1], path)
    return RunFiles(folder, save_name, files, list(snaps.values()))
