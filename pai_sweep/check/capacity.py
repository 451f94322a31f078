"""The library's 3-dendrite capacity test (testing_dendrite_capacity) in a worker subprocess, summarised.

The worker runs the run config with `--capacity-test` in its own folder (stdin closed, so a
pdb trap quits instead of hanging); its metrics.jsonl and result.json say whether three
dendrites were added, how long epochs took at each dendrite count, and the parameters.
"""

from __future__ import annotations

import resource
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from pai_sweep.check.diagnose import diagnose
from pai_sweep.schema import RUN_GROUPS
from pai_sweep.trial_files import RUN_CONFIG, WORKER_LOG, read_metrics, read_result

CAPACITY_DENDRITES = 3  # the library completes its capacity test after adding this many


@dataclass
class CapacityReport:
    ok: bool
    reason: str
    dendrites_added: int = 0
    epochs: int = 0
    seconds_by_dendrites: dict[int, float] = field(default_factory=dict)  # mean epoch seconds trained with d dendrites
    params_by_dendrites: dict[int, int] = field(default_factory=dict)  # parameters after d dendrites were added
    peak_memory_mb: float | None = None  # CUDA max_memory_allocated on GPU, else the worker's max RSS
    memory_kind: str = "cpu_max_rss"
    wall_seconds: float = 0.0
    folder: str = ""
    diagnosis: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def write_run_config(run_cfg: Any, folder: Path, dendrites: Any = None, max_epochs: int = 10) -> None:
    """run.yaml for the worker: the run groups of `run_cfg`, dendrites replaced when given, epochs capped."""
    groups = {g: OmegaConf.to_container(run_cfg[g], resolve=True) for g in RUN_GROUPS}
    if dendrites is not None:
        groups["dendrites"] = OmegaConf.to_container(OmegaConf.create(dendrites), resolve=True) if not isinstance(dendrites, dict) else dict(dendrites)
    groups["dendrites"]["enabled"] = True
    # one dendrite per epoch, complete after the third: a few epochs are enough
    groups["train"]["max_epochs"] = max(CAPACITY_DENDRITES + 2, min(int(groups["train"]["max_epochs"]), max_epochs))
    folder.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(OmegaConf.create(groups), folder / RUN_CONFIG)


def run_capacity_test(run_cfg: Any, folder: Path, dendrites: Any = None, max_batches: int | None = None,
                      timeout: float | None = 600) -> CapacityReport:
    """Run the capacity test in `folder` (a fresh one: PerforatedAI re-reads an old config there)."""
    from pai_sweep.worker import spawn_worker

    folder = Path(folder).resolve()
    write_run_config(run_cfg, folder, dendrites)
    extra = ["--capacity-test"] + (["--max-batches", str(int(max_batches))] if max_batches else [])
    start = time.perf_counter()
    proc = spawn_worker(folder, extra_args=extra)
    try:
        proc.wait(timeout=timeout)
    except Exception:
        proc.kill()
        proc.wait()
    wall = time.perf_counter() - start
    # ru_maxrss of waited-for children, in KiB on Linux: the worker is the only child waited here
    rss_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return summarise(folder, wall, rss_mb)


def summarise(folder: Path, wall: float = 0.0, rss_mb: float | None = None) -> CapacityReport:
    result = read_result(folder)
    records = read_metrics(folder)
    log_path = folder / WORKER_LOG
    log = log_path.read_text(errors="replace") if log_path.exists() else ""
    report = CapacityReport(ok=False, reason="", wall_seconds=round(wall, 2), folder=str(folder), epochs=len(records))
    trained_with = 0
    seconds: dict[int, list[float]] = {}
    for rec in records:
        seconds.setdefault(trained_with, []).append(rec.seconds)
        if rec.params is not None:
            report.params_by_dendrites.setdefault(rec.dendrites, rec.params)
        trained_with = rec.dendrites
    report.seconds_by_dendrites = {d: round(sum(v) / len(v), 4) for d, v in sorted(seconds.items())}
    report.dendrites_added = max((rec.dendrites for rec in records), default=0)
    if result is not None and result.base_params is not None:
        report.params_by_dendrites = {0: result.base_params, **report.params_by_dendrites}
    gpu_mb = (result.extra or {}).get("max_memory_mb") if result is not None else None
    if gpu_mb is not None:
        report.peak_memory_mb, report.memory_kind = float(gpu_mb), "cuda_max_memory_allocated"
    elif rss_mb is not None:
        report.peak_memory_mb = round(rss_mb, 1)
    if result is None:
        report.reason = "the worker ended without result.json (PerforatedAI exits 0 on a dims mismatch)"
    elif not result.ok:
        report.reason = result.reason
    elif report.dendrites_added < CAPACITY_DENDRITES:
        report.reason = f"only {report.dendrites_added} of {CAPACITY_DENDRITES} dendrites were added in {len(records)} epochs ({result.reason})"
    else:
        report.ok, report.reason = True, f"{report.dendrites_added} dendrites added in {len(records)} epochs"
    if not report.ok:
        found = diagnose(log)
        report.diagnosis = found.to_dict() if found else None
    return report
