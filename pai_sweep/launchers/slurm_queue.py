"""What the SLURM scheduler says about our jobs: one batched, cached squeue (sacct for older jobs) per poll round;
sinfo's partitions checked against a trial's request, and a failed job's state in plain words.

Every scheduler command runs with a timeout, so a slow or dead controller never hangs the driver;
a failed call keeps the last known states and is retried on the next round.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from typing import Any

from pai_sweep.errors import LauncherError
from pai_sweep.launchers.base import JobState

COMMAND_TIMEOUT_S = 30.0
MIN_INTERVAL_S = 1.0  # never ask the scheduler more often than this, whatever launcher.poll_interval says

_PENDING = {"PENDING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "CONFIGURING", "RESIZING", "SUSPENDED",
            "PREEMPTED", "STOPPED"}  # PREEMPTED: requeued next (PreemptMode=REQUEUE)
_RUNNING = {"RUNNING", "COMPLETING", "STAGE_OUT", "SIGNALING"}


@dataclass
class JobRecord:
    state: str  # SLURM's state word, e.g. RUNNING, CANCELLED (the "by UID" suffix is in `detail`)
    node: str = ""
    exit_code: str = ""
    detail: str = ""  # the full State text and the scheduler's Reason


def to_job_state(slurm_state: str) -> JobState:
    if slurm_state in _PENDING:
        return JobState.PENDING
    if slurm_state in _RUNNING:
        return JobState.RUNNING
    if slurm_state == "COMPLETED":
        return JobState.FINISHED
    return JobState.FAILED  # FAILED, CANCELLED, TIMEOUT, NODE_FAIL, OUT_OF_MEMORY, BOOT_FAIL, DEADLINE, ...


def run_command(args: list[str], timeout: float | None = None) -> str:
    """stdout of a scheduler command; LauncherError with its message when it fails or times out."""
    timeout = timeout or COMMAND_TIMEOUT_S
    if shutil.which(args[0]) is None:
        raise LauncherError(f"'{args[0]}' is not on PATH: run the driver where SLURM's commands work (a login node)")
    # Own session: on timeout the whole group is killed, so no child can hold the pipes open.
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise LauncherError(f"'{' '.join(args[:2])} ...' did not answer within {timeout:.0f}s: is slurmctld up?") from None
    if proc.returncode != 0:
        message = " ".join((stderr or stdout).split()) or f"exit code {proc.returncode}"
        raise LauncherError(f"'{' '.join(args[:2])} ...' failed: {message}")
    return stdout


def partitions() -> list[str]:
    """Partition names from sinfo (the default one without its '*')."""
    out = run_command(["sinfo", "-h", "-o", "%P"])
    return sorted({line.strip().rstrip("*") for line in out.splitlines() if line.strip()})


@dataclass
class PartitionResources:
    """The most one node of a partition offers (sinfo %G %c %m); None where sinfo did not say."""

    gres: str
    gpus: int | None
    cpus: int | None
    mem_mb: int | None


def _count(text: str) -> int | None:
    text = text.strip().rstrip("+")
    return int(text) if text.isdigit() else None


def _gpus(gres: str) -> int | None:
    """GPUs per node from a gres string: 'gpu:4', 'gpu:a100:2(S:0-1)', 'gpu:1,shard:8' -> 4, 2, 1; '(null)' -> 0."""
    if gres.strip() in ("", "(null)"):
        return 0
    total = 0
    for item in gres.split(","):
        parts = item.split("(")[0].split(":")
        if parts[0] == "gpu":
            n = _count(parts[-1]) if len(parts) > 1 else None
            total += n if n is not None else 1  # 'gpu' or 'gpu:a100' without a count: one
    return total


def partition_resources(partition: str | None) -> PartitionResources | None:
    """The named partition's (or the default one's) largest node; None when sinfo's answer cannot be read."""
    rows = [line.strip().split("|") for line in run_command(["sinfo", "-h", "-o", "%P|%G|%c|%m"]).splitlines()]
    rows = [r for r in rows if len(r) == 4 and (r[0].rstrip("*") == partition if partition else r[0].endswith("*"))]
    if not rows:
        return None
    gpus = [_gpus(r[1]) for r in rows]
    cpus = [_count(r[2]) for r in rows]
    mems = [_count(r[3]) for r in rows]
    return PartitionResources(
        gres=",".join(sorted({r[1] for r in rows})),
        gpus=max(gpus) if all(g is not None for g in gpus) else None,
        cpus=max(c for c in cpus if c is not None) if any(c is not None for c in cpus) else None,
        mem_mb=max(m for m in mems if m is not None) if any(m is not None for m in mems) else None,
    )


def check_partition(cfg: Any) -> None:
    """Before any submission: launcher.partition exists and one node can hold a trial's request (else sbatch refuses
    every trial with its own message, and the sweep burns its budget on them)."""
    try:
        known = partitions()
    except LauncherError as exc:
        raise LauncherError(f"{exc}; is the SLURM controller reachable from here? (scontrol ping)") from None
    if cfg.partition and cfg.partition not in known:
        raise LauncherError(f"launcher.partition={cfg.partition!r} is not a partition of this cluster; "
                            f"sinfo lists: {', '.join(known) or '(none)'}")
    res = partition_resources(cfg.partition)
    if res is None:
        return
    where = f"launcher.partition={cfg.partition}" if cfg.partition else "the default partition"
    gpus, cpus = int(cfg.gpus_per_trial or 0), int(cfg.cpus_per_trial or 1)
    if gpus and res.gpus == 0:
        raise LauncherError(f"{where} has no GPUs (sinfo gres: {res.gres}) but launcher.gpus_per_trial={gpus}: "
                            "set launcher.gpus_per_trial=0 for CPU trials, or pick a GPU partition")
    if gpus and res.gpus is not None and gpus > res.gpus:
        raise LauncherError(f"{where} has at most {res.gpus} GPU(s) per node but launcher.gpus_per_trial={gpus}: "
                            f"set launcher.gpus_per_trial={res.gpus} or less")
    if res.cpus is not None and cpus > res.cpus:
        raise LauncherError(f"{where} has at most {res.cpus} CPUs per node but launcher.cpus_per_trial={cpus}: "
                            f"set launcher.cpus_per_trial={res.cpus} or less")
    if cfg.mem_gb and res.mem_mb is not None and float(cfg.mem_gb) * 1024 > res.mem_mb:
        raise LauncherError(f"{where} has at most {res.mem_mb / 1024:.1f} GB per node but launcher.mem_gb={cfg.mem_gb}: "
                            f"set launcher.mem_gb={res.mem_mb // 1024} or less (or null for the partition's default)")


def describe_end(job_id: str, detail: str, node: str | None, time_min: Any) -> str:
    """Why a job failed, from SLURM's state text (`detail`: JobRecord.detail) in plain words."""
    where = f" on {node}" if node else ""
    if detail.startswith("CANCELLED"):
        return f"cancelled by the scheduler (SLURM job {job_id} {detail}{where})"
    if detail.startswith("NODE_FAIL"):
        return f"the node died (SLURM job {job_id} {detail}{where})"
    if detail.startswith("TIMEOUT"):
        return f"hit the time limit launcher.time_min={time_min} (SLURM job {job_id}{where})"
    if detail.startswith("OUT_OF_MEMORY"):
        return f"out of memory: raise launcher.mem_gb (SLURM job {job_id}{where})"
    if detail:
        return f"SLURM job {job_id} {detail}{where}"
    return f"job {job_id} ended without a result"


def expand_ids(job_id: str) -> list[str]:
    """`12_[2-3,5%2]` (tasks of a job array still pending together) -> 12_2, 12_3, 12_5; other ids as they are."""
    head, bracket, rest = job_id.partition("_[")
    if not bracket:
        return [job_id]
    ids = []
    for part in rest.rstrip("]").split("%")[0].split(","):
        low, _, high = part.partition("-")
        if low.isdigit() and (not high or high.isdigit()):
            ids.extend(f"{head}_{n}" for n in range(int(low), int(high or low) + 1))
    return ids


def parse_sacct(text: str) -> dict[str, JobRecord]:
    """`sacct -X -P -o JobID,State,NodeList,ExitCode,Reason` -> records by job id (steps skipped)."""
    records: dict[str, JobRecord] = {}
    for line in text.splitlines():
        parts = line.split("|")
        if len(parts) < 5 or not parts[0] or "." in parts[0]:
            continue
        job_id, state, node, exit_code, reason = (p.strip() for p in parts[:5])
        word = state.split()[0] if state else "UNKNOWN"
        detail = state if reason in ("", "None") else f"{state}, reason {reason}"
        for one in expand_ids(job_id):
            records[one] = JobRecord(word, "" if node.startswith("None") else node, exit_code, detail)
    return records


def parse_squeue(text: str) -> dict[str, JobRecord]:
    """`squeue -h -r -o %i|%T|%N|%r` -> records by job id (a task of a job array: ARRAYID_TASK, one per line)."""
    records: dict[str, JobRecord] = {}
    for line in text.splitlines():
        parts = line.split("|")
        if len(parts) >= 4 and parts[0].strip():
            job_id, state, node, reason = (p.strip() for p in parts[:4])
            detail = state if reason in ("", "None") else f"{state}, reason {reason}"
            for one in expand_ids(job_id):
                records[one] = JobRecord(state, "" if node.startswith("(") else node, "", detail)
    return records


class SlurmQueue:
    """States of the jobs we follow, refreshed for all of them at once at most every `interval` seconds."""

    def __init__(self, interval: float):
        self.interval = max(MIN_INTERVAL_S, float(interval))
        self.records: dict[str, JobRecord] = {}
        self.active: set[str] = set()  # jobs not yet seen in a final state
        self.last_refresh = float("-inf")
        self.last_error = ""
        self.calls = 0  # scheduler commands run (for tests and the curious)

    def follow(self, job_id: str) -> None:
        self.active.add(job_id)
        self.last_refresh = float("-inf")  # a new job: ask at the next poll

    def get(self, job_id: str, force: bool = False) -> JobRecord | None:
        if job_id not in self.records and job_id not in self.active:
            self.follow(job_id)
        if force or time.monotonic() - self.last_refresh >= self.interval:
            self.refresh()
        return self.records.get(job_id)

    def _gone_from_array(self, unknown: list[str], found: dict[str, JobRecord]) -> dict[str, JobRecord]:
        """A task of a job array cancelled while pending leaves no record at all (SLURM 22.05): when the
        controller and accounting both answered, know its array but not it, and it never ran, it was cancelled."""
        known_arrays = {i.split("_")[0] for i in found if "_" in i}
        gone = {}
        for job_id in unknown:
            last = self.records.get(job_id)
            if "_" in job_id and job_id.split("_")[0] in known_arrays and (last is None or to_job_state(last.state) is JobState.PENDING):
                gone[job_id] = JobRecord("CANCELLED", detail="CANCELLED before it started (the task left its job array)")
        return gone

    def refresh(self) -> None:
        self.last_refresh = time.monotonic()
        ids = sorted(self.active)
        if not ids:
            return
        # squeue asks the controller (current, also for requeued jobs); sacct covers jobs it has forgotten.
        found: dict[str, JobRecord] = {}
        answered = 0  # scheduler commands that answered this round
        try:
            self.calls += 1
            found = parse_squeue(run_command(["squeue", "-h", "-r", "-t", "all", "-o", "%i|%T|%N|%r", "-j", ",".join(ids)]))
            answered += 1
        except LauncherError as exc:  # also when every id is unknown to the controller
            self.last_error = str(exc)
        missing = [i for i in ids if i not in found]
        if missing:
            arrays = sorted({i.split("_")[0] for i in missing if "_" in i})  # sacct -j ARRAY lists its recorded tasks
            try:
                self.calls += 1
                found.update(parse_sacct(run_command(["sacct", "-X", "-P", "-n", "-o", "JobID,State,NodeList,ExitCode,Reason",
                                                      "-j", ",".join(missing + arrays)])))
                self.last_error = ""
                answered += 1
            except LauncherError as exc:
                self.last_error = str(exc)
        elif found:
            self.last_error = ""
        if answered == 2:
            found.update(self._gone_from_array([i for i in missing if i not in found], found))
        for job_id, record in found.items():
            if job_id in self.active:
                self.records[job_id] = record
                if to_job_state(record.state) in (JobState.FINISHED, JobState.FAILED):
                    self.active.discard(job_id)
