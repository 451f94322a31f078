"""The library's 3-dendrite capacity test (preflight.capacity_test: a worker forked from the warm worker server on
a CPU, else a fresh subprocess), with the check's extras.

preflight runs the worker with `--capacity-test` in a folder and says whether three
dendrites were added; this adds what the check reports from the same folder: mean epoch
seconds at each dendrite count, parameters at each count, peak memory (CUDA
max_memory_allocated on a GPU, else the worker's max RSS) and a diagnosis of a failure.
"""

from __future__ import annotations

import os
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pai_sweep.check.diagnose import diagnose
from pai_sweep.trial_files import WORKER_LOG, read_metrics, read_result


@dataclass
class CapacityReport:
    ok: bool
    reason: str
    dendrites_added: int = 0
    epochs: int = 0
    seconds_by_dendrites: dict[int, float] = field(default_factory=dict)  # mean epoch seconds trained with d dendrites
    params_by_dendrites: dict[int, int] = field(default_factory=dict)  # parameters once d dendrites were added
    peak_memory_mb: float | None = None
    memory_kind: str = "cpu_max_rss"
    wall_seconds: float = 0.0
    folder: str = ""
    diagnosis: dict[str, Any] | None = None
    start: str = ""  # warm: forked from the warm worker server (CPU); fresh: its own process (CUDA)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def run_capacity_test(run_cfg: Any, folder: Path, batches: int = 4, timeout: float = 600.0) -> CapacityReport:
    """Run the capacity test in `folder` (fresh: PerforatedAI re-reads an old config found there)."""
    from pai_sweep.preflight import capacity_test

    folder = Path(folder).resolve()
    outcome: dict[str, Any] = {}
    runner = threading.Thread(target=lambda: outcome.update(capacity_test(run_cfg, batches=int(batches), timeout=timeout, workdir=folder)))
    runner.start()
    peak_kb = 0
    while runner.is_alive():  # the worker's peak RSS, read while it runs (its cwd is the folder)
        peak_kb = max(peak_kb, worker_peak_kb(folder))
        runner.join(0.2)
    found = outcome or {"ok": False, "verdict": "the capacity test raised before it finished", "seconds": 0.0}
    report = summarise(folder, rss_mb=peak_kb / 1024 if peak_kb else None)
    report.ok = bool(found["ok"])
    report.reason = str(found["verdict"])
    report.wall_seconds = float(found.get("seconds") or 0.0)
    report.start = str(found.get("start") or "")
    if not report.ok:
        log = folder / WORKER_LOG
        hit = diagnose(log.read_text(errors="replace") if log.exists() else "")
        report.diagnosis = hit.to_dict() if hit else None
    return report


def worker_peak_kb(folder: Path) -> int:
    """VmHWM (peak resident memory, KiB) of the process whose working directory is `folder`, 0 if none (Linux /proc)."""
    peak = 0
    for entry in os.scandir("/proc") if os.path.isdir("/proc") else ():
        if not entry.name.isdigit():
            continue
        try:
            if os.readlink(f"/proc/{entry.name}/cwd") != str(folder):
                continue
            with open(f"/proc/{entry.name}/status") as fh:
                for line in fh:
                    if line.startswith("VmHWM:"):
                        peak = max(peak, int(line.split()[1]))
        except (OSError, ValueError):
            continue
    return peak


def summarise(folder: Path, rss_mb: float | None = None) -> CapacityReport:
    """Seconds and parameters per dendrite count, and peak memory, from a worker's trial folder."""
    result = read_result(folder)
    records = read_metrics(folder)
    report = CapacityReport(ok=False, reason="", folder=str(folder), epochs=len(records))
    seconds: dict[int, list[float]] = {}
    trained_with = 0  # a record holds the count after its epoch; the epoch trained with the one before
    for rec in records:
        seconds.setdefault(trained_with, []).append(rec.seconds)
        if rec.params is not None:
            report.params_by_dendrites.setdefault(int(rec.dendrites), int(rec.params))
        trained_with = int(rec.dendrites)
    if result is not None and result.base_params:
        report.params_by_dendrites = {0: int(result.base_params), **report.params_by_dendrites}
    report.params_by_dendrites = dict(sorted(report.params_by_dendrites.items()))
    report.seconds_by_dendrites = {d: round(sum(v) / len(v), 4) for d, v in sorted(seconds.items())}
    report.dendrites_added = max((int(rec.dendrites) for rec in records), default=0)
    gpu_mb = (result.extra or {}).get("max_memory_mb") if result is not None else None
    if gpu_mb is not None:
        report.peak_memory_mb, report.memory_kind = float(gpu_mb), "cuda_max_memory_allocated"
    elif rss_mb is not None:
        report.peak_memory_mb = round(rss_mb, 1)
    return report
