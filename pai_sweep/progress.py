"""What a sweep prints while it runs (one line per event) and the summary table at the end."""

from __future__ import annotations

import sys
import time
from typing import Any, Iterable, Mapping, TextIO


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e4 else f"{value:,.0f}"
    if isinstance(value, list):
        return "[" + ",".join(_fmt(v) for v in value) + "]"
    return str(value)


def short_params(params: Mapping[str, Any]) -> str:
    # The last part of each dotted key is enough to read a line.
    return " ".join(f"{k.rsplit('.', 1)[-1]}={_fmt(v)}" for k, v in params.items())


class Progress:
    def __init__(self, stream: TextIO | None = None, total: int = 0):
        self.stream = stream or sys.stdout
        self.total = total
        self.t0 = time.monotonic()

    def line(self, text: str) -> None:
        elapsed = time.monotonic() - self.t0
        print(f"[{elapsed:7.1f}s] {text}", file=self.stream, flush=True)

    def counts(self, done: int, running: int, failed: int, best: str | None) -> str:
        tail = f" | best so far: {best}" if best else ""
        return f"done {done}/{self.total}, running {running}, failed {failed}{tail}"

    def started(self, number: int, origin: str, device: str, params: Mapping[str, Any]) -> None:
        self.line(f"trial {number} started ({origin}) on {device}: {short_params(params) or 'defaults'}")

    def finished(self, number: int, state: str, detail: str, counts: str) -> None:
        self.line(f"trial {number} {state}: {detail} | {counts}")

    def note(self, text: str) -> None:
        self.line(text)

    def table(self, rows: Iterable[Mapping[str, Any]], columns: list[str]) -> None:
        rows = list(rows)
        cells = [[_fmt(r.get(c)) for c in columns] for r in rows]
        widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
        out = [" ".join(c.ljust(w) for c, w in zip(columns, widths)), " ".join("-" * w for w in widths)]
        out += [" ".join(v.ljust(w) for v, w in zip(row, widths)) for row in cells]
        print("\n".join(out), file=self.stream, flush=True)
