"""Strict CSV reading: a truncated or malformed file is an AnalysisError naming the file and line."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pandas as pd

from pai_sweep.errors import AnalysisError


def read_numeric_csv(path: Path, required: tuple[str, ...] = ()) -> pd.DataFrame:
    """All cells numeric or empty (NaN); every row as wide as the header; required columns present."""
    try:
        text = Path(path).read_text()
    except UnicodeDecodeError:
        raise AnalysisError(f"{path}: not a text file; the file is corrupt (re-run the training or delete it)") from None
    except OSError as exc:
        raise AnalysisError(f"{path}: cannot read it ({exc.strerror})") from None
    lines = text.splitlines()
    if not lines or not lines[0].strip():
        raise AnalysisError(f"{path}: the file is empty (no header line); re-run the training or delete it")
    if not text.endswith("\n"):  # pandas ends every row with a newline: a missing one means a cut-off write
        raise AnalysisError(
            f"{path}: line {len(lines)} is incomplete (no line end): the file is truncated (re-run the training or delete it)"
        )
    try:
        header = next(csv.reader([lines[0]]))
        body = list(csv.reader(lines[1:]))
    except csv.Error as exc:  # NUL bytes and the like: binary garbage that happens to decode
        raise AnalysisError(f"{path}: not a CSV file ({exc}); the file is corrupt (re-run the training or delete it)") from None
    header = [h.strip() for h in header]
    if len(set(header)) != len(header) or "" in header:
        raise AnalysisError(f"{path}: the header {header} has empty or repeated column names: the file is malformed")
    missing = [c for c in required if c not in header]
    if missing:
        raise AnalysisError(
            f"{path}: not a PerforatedAI file of this kind: columns {header}, expected {list(required)}"
        )
    rows = []
    for number, row in enumerate(body, start=2):
        if not row:
            continue
        if len(row) != len(header):
            raise AnalysisError(
                f"{path}: line {number} has {len(row)} fields, the header has {len(header)}: "
                "the file is malformed (re-run the training or delete it)"
            )
        values = []
        for cell in row:
            cell = cell.strip()
            if cell in ("", "None"):
                values.append(math.nan)
                continue
            try:
                values.append(float(cell))
            except ValueError:
                raise AnalysisError(f"{path}: line {number}: {cell!r} is not a number: the file is malformed") from None
        rows.append(values)
    return pd.DataFrame(rows, columns=header, dtype=float)
