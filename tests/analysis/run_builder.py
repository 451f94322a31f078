"""Write small PerforatedAI 3.2.9-format output folders for rule tests (same file names and layouts as the library)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

# The real PerforatedAI 3.2.9 output folders copied into tests/fixtures/ (see their README).
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
HISTORY_RUN = FIXTURES / "pai_digits_history_run"
CAPACITY_RUN = FIXTURES / "pai_digits_capacity_test"


def _write(path: Path, header: list[str], rows: list[list]) -> None:
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows([["" if v is None else v for v in row] for row in rows])


def _scores(path: Path, vals: list[float], extras: dict[str, list[float]]) -> None:
    # stacked: one block of rows per column, other cells empty (as 3.2.9 writes it)
    names = list(extras)
    header = ["Epochs", "Validation Scores", "Validation Running Scores", *names]
    width = len(header)
    rows = [[e, v] + [None] * (width - 2) for e, v in enumerate(vals)]
    rows += [[e, None, v] + [None] * (width - 3) for e, v in enumerate(vals)]
    for i, name in enumerate(names):
        rows += [[e] + [None] * (2 + i) + [v] + [None] * (width - 4 - i) for e, v in enumerate(extras[name])]
    _write(path, header, rows)


def write_run(
    folder: Path,
    segments: list[list[float]],
    params: list[int] | None = None,
    train: list[list[float]] | None = None,
    lr: list[float] | None = None,
    rejected: list[tuple[int, int, float]] = (),
    pb: dict[str, float] | None = None,
    config: dict | None = None,
    save: str = "run",
    maximizing: bool = True,
) -> Path:
    """segments[k]: the kept epochs trained with k dendrites; a switch follows the last epoch of each segment but the last.
    rejected: (dendrites, params, val) rows of discarded tries, written as _noImprove_ snapshots."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    params = params or [1000 * (k + 1) for k in range(len(segments))]
    vals = [v for seg in segments for v in seg]
    tr = [v for seg in train for v in seg] if train else None
    extras = {"Train": tr} if tr else {}
    _scores(folder / f"{save}Scores.csv", vals, extras)
    switch, ends, start = [], [], 0
    for seg in segments:
        ends.append((start, start + len(seg)))
        start += len(seg)
    for k in range(len(segments) - 1):
        switch += [ends[k][1] - 1] * 2
    _write(folder / f"{save}switch_epochs.csv", ["Switch Number", "Switch Epoch"], [[i, e] for i, e in enumerate(switch)])
    raw_params = [params[0]] + [p for p in params[1:] for _ in (0, 1)]
    _write(folder / f"{save}param_counts.csv", ["Switch Number", "Param Count"], [[i, p] for i, p in enumerate(raw_params)])
    arch = []
    for k, (a, b) in enumerate(ends):
        seg = vals[a:b]
        i = a + (seg.index(max(seg)) if maximizing else seg.index(min(seg)))
        arch.append([params[k], vals[i]] + ([tr[i]] if tr else []))
    head = ["Param Counts", "Max Valid Scores", *extras]
    _write(folder / f"{save}_best_arch_scores.csv", head, arch)
    rates = lr or [0.01] * len(vals)
    _write(folder / f"{save}learning_rate.csv", ["Epochs", "learning_rate"], [[e, x] for e, x in enumerate(rates)])
    _write(folder / f"{save}Times.csv", ["Epochs", "Normal Epoch Times", "PAI Epoch Times"], [[e, 0.5, None] for e in range(len(vals))])
    mods = sorted(pb or {".0": None, ".2": None})
    pb_head = ["Epochs"] + [f"Best {w} for all nodes Layer {m}" for m in mods for w in ("ever", "current")]
    pb_rows = [[0] + [pb[m] for m in mods for _ in (0, 1)]] if pb else []
    _write(folder / f"{save}Best PBScores.csv", pb_head, pb_rows)
    for n, (d, p, v) in enumerate(rejected):
        snap = f"{save}_22.11.2026.14.48.{n:02d}_noImprove_lr_0"
        rows = [r[:2] + ([None] if tr else []) for r in arch[:d]] + [[p, v] + ([None] if tr else [])]
        _write(folder / f"{snap}_best_arch_scores.csv", head, rows)
        _scores(folder / f"{snap}Scores.csv", vals, extras)
        _write(folder / f"{snap}switch_epochs.csv", ["Switch Number", "Switch Epoch"],
               [[i, e] for i, e in enumerate(switch[: 2 * (d - 1)] + [len(vals) - 1] * 2)])
    if config is not None:
        (folder / f"{save}_config.json").write_text(json.dumps(config))
    return folder
