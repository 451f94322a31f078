"""The local launcher: worker processes on this machine, one per device slot.

Slots: `launcher.trials_per_device` (k) per GPU (CUDA_VISIBLE_DEVICES=<id>) when GPUs exist,
otherwise CPU slots (CUDA hidden); the cores are split evenly over the slots (OMP/MKL threads
per trial), so k trials sharing a device share its cores too. A trial that runs out of GPU memory
while sharing its GPU is run again once, alone on a GPU (its first failure kept as
result.oom-shared.json). Each worker runs in its own process group, so cancel kills it and
anything it started. launch.json in the trial folder records pid, device and start time: a driver started
again while a worker still runs follows that worker to its end instead of running the trial again.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from pai_sweep.launchers.base import JobState, Launcher, TrialJob
from pai_sweep.launchers.devices import device_slots, threads_per_trial
from pai_sweep.launchers.exits import wait_any
from pai_sweep.launchers.processes import Pid, Spawn, WorkerRun, ask_to_stop, cmdline_of, cwd_of, pid_alive, stop_group, wait_gone
from pai_sweep.spawn import spawn_worker, worker_environ
from pai_sweep.trial_files import LAUNCH, RESULT, WORKER_LOG, iter_metrics, read_result, write_json

STOP_WAIT_S = 60.0  # at most this long for running trials to finish their epoch when the sweep stops
OOM_SHARED_RESULT = "result.oom-shared.json"  # the first attempt of a trial run again alone after a GPU out-of-memory


def is_gpu_oom(reason: str) -> bool:
    """The worker's failure reason says the GPU ran out of memory (torch's message)."""
    return "CUDA out of memory" in reason or "CUDA error: out of memory" in reason


class LocalLauncher(Launcher):
    follows_reattached = True  # a worker left running by a dead driver is followed to its end, not run again

    def __init__(self, launcher_cfg: Any, sweep_dir: Path, in_flight: int, spawn: Spawn | None = None):
        self.cfg = launcher_cfg
        self.sweep_dir = Path(sweep_dir)
        self.per_device = getattr(launcher_cfg, "trials_per_device", 1)
        if self.per_device is None:
            self.per_device = 1
        self.slots = device_slots(getattr(launcher_cfg, "devices", "auto"), in_flight, self.per_device)
        self.capacity = len(self.slots)
        self.free = list(self.slots)
        self.spawn = spawn or self._choose_spawn(getattr(launcher_cfg, "warm_start", None))
        self.procs: dict[int, WorkerRun] = {}
        self.job_slot: dict[int, list[str]] = {}  # trial -> the slots it holds (all of a GPU's when it runs alone)
        self.waiting: dict[int, TrialJob] = {}  # trials to start once a slot (or a whole GPU) is free
        self.reserved: dict[str, int] = {}  # GPU -> the trial that waits to run alone on it
        self.retried: set[int] = set()  # trials already run again alone after a GPU out-of-memory
        self.threads = threads_per_trial(self.slots, os.cpu_count() or 1, self.per_device)

    def _choose_spawn(self, warm: bool | None) -> Spawn:
        # Warm forks save the seconds each worker spends importing torch; a fresh process is the
        # only safe start for a GPU slot (CUDA must not be initialised before a fork).
        if warm or (warm is None and all(slot == "cpu" for slot in self.slots)):
            from pai_sweep.launchers.warm import prestart, spawn_warm

            prestart()
            return spawn_warm
        return spawn_worker

    def _env(self, device: str, threads: int) -> dict[str, str]:
        env = worker_environ()
        env["CUDA_VISIBLE_DEVICES"] = "" if device == "cpu" else device  # a CPU slot must not grab a GPU
        for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            env[name] = str(threads)
        return env

    def submit(self, trial_number: int, trial_dir: Path) -> TrialJob:
        if len(self.procs) + len(self.waiting) >= self.capacity:
            raise RuntimeError("no free device slot: the driver submitted more trials than launcher.capacity")
        job = TrialJob(trial_number, Path(trial_dir), {"launcher": "local", "pid": None, "device": "queued"})
        if not self._start(job):  # every free slot is kept for a trial that must run alone: wait for one
            self.waiting[trial_number] = job
        return job

    def _take(self, job: TrialJob) -> list[str] | None:
        """The slots this trial may start in now: one free slot, or a whole GPU for a trial that runs alone."""
        number = job.trial_number
        device = next((d for d, n in self.reserved.items() if n == number), None)
        if device is not None:  # it runs alone: it starts once every other slot of its GPU is free too
            own = self.job_slot.get(number, [])
            if len(own) + self.free.count(device) < self.slots.count(device):
                return None
            self.free = [s for s in self.free if s != device]
            return [device] * self.slots.count(device)
        for i, slot in enumerate(self.free):
            if slot not in self.reserved:
                return [self.free.pop(i)]
        return None

    def _start(self, job: TrialJob) -> bool:
        held = self._take(job)
        if held is None:
            return False
        device, log = held[0], job.trial_dir / WORKER_LOG
        sharing = device != "cpu" and len(held) < self.slots.count(device)
        threads = self.threads * len(held)
        try:
            proc = WorkerRun.start(job.trial_dir, self.spawn, env=self._env(device, threads), log_path=log)
        except Exception:
            self.free[:0] = held
            raise
        self.procs[job.trial_number] = proc
        self.job_slot[job.trial_number] = held
        job.info.update({"launcher": "local", "pid": proc.pid, "device": device, "start_time": time.time(),
                         "threads": threads, "shares_device_with": self.slots.count(device) - 1 if sharing else 0,
                         "log": str(log), "python": sys.executable})
        write_json(job.trial_dir / LAUNCH, job.info)
        return True

    def _release(self, job: TrialJob) -> None:
        self.free.extend(self.job_slot.pop(job.trial_number, []))
        self.procs.pop(job.trial_number, None)
        self.waiting.pop(job.trial_number, None)
        for device in [d for d, n in self.reserved.items() if n == job.trial_number]:
            del self.reserved[device]

    def _start_waiting(self) -> None:
        for number, job in list(self.waiting.items()):
            if self._start(job):
                del self.waiting[number]

    def _retry_alone(self, job: TrialJob) -> bool:
        """A trial that ran out of GPU memory while sharing its GPU runs once more, alone on that GPU."""
        held = self.job_slot.get(job.trial_number, [])
        if job.trial_number in self.retried or not held or held[0] == "cpu" or len(held) >= self.slots.count(held[0]):
            return False
        result = read_result(job.trial_dir)
        if result is None or result.ok or not is_gpu_oom(result.reason or ""):
            return False
        device = held[0]
        self.retried.add(job.trial_number)
        os.replace(job.trial_dir / RESULT, job.trial_dir / OOM_SHARED_RESULT)
        with open(job.trial_dir / WORKER_LOG, "a") as log:
            log.write(f"--- pai-sweep: out of GPU memory while sharing GPU {device} with "
                      f"{self.slots.count(device) - 1} other trial(s); running it again alone on that GPU\n")
        self.procs.pop(job.trial_number, None)
        self.reserved[device] = job.trial_number  # its slot stays held; the GPU's other slots join it as they free
        job.info.update({"pid": None, "device": "queued", "oom_retry": True})
        self.waiting[job.trial_number] = job
        return True

    def poll(self, job: TrialJob) -> JobState:
        self._start_waiting()
        if job.trial_number in self.waiting:
            return JobState.PENDING
        proc = self.procs.get(job.trial_number)
        if proc is None:  # re-attached after a driver restart: not our child (no exit code: result.json says how it ended)
            if pid_alive(int(job.info.get("pid", -1))):
                return JobState.RUNNING
            self._release(job)
            self._start_waiting()
            return JobState.FINISHED
        code = proc.poll()
        if code is None:
            return JobState.RUNNING
        if self._retry_alone(job):
            self._start_waiting()
            return JobState.RUNNING if job.trial_number not in self.waiting else JobState.PENDING
        job.info["returncode"] = code
        self._release(job)
        self._start_waiting()
        return JobState.FINISHED

    def wait(self, timeout: float) -> bool:
        """Return the moment one of this launcher's workers ends (its exit fd), else after `timeout` s."""
        return wait_any(list(self.procs.values()), timeout)

    def cancel(self, job: TrialJob, reason: str = "") -> None:
        proc = self.procs.get(job.trial_number)
        if proc is not None:
            proc.stop()  # waits for the group to end (SIGKILL after the grace)
        elif int(job.info.get("pid") or -1) > 0:  # re-attached: not our child
            stop_group(Pid(int(job.info["pid"])))
        job.reason = reason or job.reason
        self._release(job)

    def stop_gracefully(self, jobs: list[TrialJob]) -> None:
        """SIGUSR1 to each worker: it ends its epoch, saves the resume point and exits (pai_sweep.training.request_stop).
        Waits about one epoch and a half (from its metrics.jsonl) for the slowest, at most STOP_WAIT_S; a trial with
        no finished epoch has nothing to keep and is not waited for."""
        waits, pids = [], []
        for job in jobs:
            pid = int(job.info.get("pid") or -1)
            records = list(iter_metrics(job.trial_dir))
            if pid <= 0 or not records or not pid_alive(pid) or not ask_to_stop(pid):
                continue
            pids.append(pid)
            waits.append(2.0 + 1.5 * max(r.seconds for r in records[-3:]))
        wait_gone(pids, min(STOP_WAIT_S, max(waits, default=0.0)))

    def reattach(self, trial_number: int, trial_dir: Path) -> TrialJob | None:
        """A worker left running by a driver that died: found by launch.json's pid and its command line."""
        try:
            info = json.loads((Path(trial_dir) / LAUNCH).read_text())
            pid = int(info["pid"])
            cmdline = cmdline_of(pid)
        except (OSError, ValueError, KeyError, TypeError):  # TypeError: it was still queued (no pid)
            return None
        # The pid may have been reused: only a process started for this trial folder counts
        # (named on its command line, or, for a warm fork, its working directory).
        folder = str(Path(trial_dir).resolve())
        if not pid_alive(pid) or (folder not in cmdline and cwd_of(pid) != folder):
            return None
        # It keeps its device: the slot it runs in is taken (any free one if the slots changed since)
        device = str(info.get("device", "cpu"))
        held = [device] if device in self.free else self.free[:1]
        for slot in held:
            self.free.remove(slot)
        self.job_slot[trial_number] = held
        return TrialJob(trial_number, Path(trial_dir), info)

    def close(self) -> None:
        for proc in list(self.procs.values()):
            proc.stop()
        self.procs.clear()
