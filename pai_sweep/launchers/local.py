"""The local launcher: worker processes on this machine, one per device slot.

Slots: one GPU per trial (CUDA_VISIBLE_DEVICES=<id>) when GPUs exist, otherwise CPU slots
that split the cores (OMP/MKL threads per slot, CUDA hidden) so two trials on two cores do
not fight. Each worker runs in its own process group, so cancel kills it and anything it
started. launch.json in the trial folder records pid, device and start time for resume.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

from pai_sweep.errors import ConfigError
from pai_sweep.launchers.base import JobState, Launcher, TrialJob
from pai_sweep.trial_files import LAUNCH, WORKER_LOG, write_json

Spawn = Callable[..., Any]  # returns a subprocess.Popen or a warm.WarmProcess (pid, poll, wait)
_GRACE_S = 3.0  # seconds between SIGTERM and SIGKILL on cancel


def visible_gpus() -> list[str]:
    """GPU ids this process may use, without importing torch (the driver must never touch CUDA)."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        return [d.strip() for d in env.split(",") if d.strip() and d.strip() != "-1"]
    if not shutil.which("nvidia-smi"):
        return []
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [str(i) for i, line in enumerate(out.splitlines()) if line.startswith("GPU ")]


def device_slots(devices: Any, in_flight: int) -> list[str]:
    """The slots trials run in: GPU ids, or "cpu" repeated in_flight times."""
    if devices in (None, "auto"):
        gpus = visible_gpus()
        return gpus[:in_flight] if gpus else ["cpu"] * in_flight
    if devices == "cpu":
        return ["cpu"] * in_flight
    if isinstance(devices, (int, str)):
        devices = [devices]
    try:
        ids = [str(int(d)) for d in devices]
    except (TypeError, ValueError):
        raise ConfigError(f"launcher.devices={devices!r} must be auto, cpu, or a list of GPU ids like [0,1]") from None
    if not ids:
        raise ConfigError("launcher.devices is an empty list; use auto, cpu, or GPU ids like [0,1]")
    return ids[:in_flight]


def _default_spawn(trial_dir: Path, env: dict | None = None, log_path: Path | None = None) -> subprocess.Popen:
    from pai_sweep.worker import spawn_worker

    return spawn_worker(trial_dir, env=env, log_path=log_path)


def _pid_alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        try:
            os.kill(pid, 0)
        except OSError:
            return False
        return True
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"  # a zombie has ended


def _cwd(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        return None


def _kill_group(pid: int, grace: float = _GRACE_S) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, sig)
        except (ProcessLookupError, PermissionError):
            return
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and _pid_alive(pid):
            time.sleep(0.05)
        if not _pid_alive(pid):
            return


class LocalLauncher(Launcher):
    def __init__(self, launcher_cfg: Any, sweep_dir: Path, in_flight: int, spawn: Spawn | None = None):
        self.cfg = launcher_cfg
        self.sweep_dir = Path(sweep_dir)
        self.slots = device_slots(getattr(launcher_cfg, "devices", "auto"), in_flight)
        self.capacity = len(self.slots)
        self.free = list(self.slots)
        self.spawn = spawn or self._choose_spawn(getattr(launcher_cfg, "warm_start", None))
        self.procs: dict[int, Any] = {}
        self.job_slot: dict[int, str] = {}
        cpus = os.cpu_count() or 1
        self.threads = max(1, cpus // max(1, sum(1 for s in self.slots if s == "cpu")))

    def _choose_spawn(self, warm: bool | None) -> Spawn:
        # Warm forks save the seconds each worker spends importing torch; a fresh process is the
        # only safe start for a GPU slot (CUDA must not be initialised before a fork).
        if warm or (warm is None and all(slot == "cpu" for slot in self.slots)):
            from pai_sweep.launchers.warm import prestart, spawn_warm

            prestart()
            return spawn_warm
        return _default_spawn

    def _env(self, device: str) -> dict[str, str]:
        env = dict(os.environ)
        if device == "cpu":
            env["CUDA_VISIBLE_DEVICES"] = ""  # a CPU slot must not grab a GPU
            for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
                env[name] = str(self.threads)
        else:
            env["CUDA_VISIBLE_DEVICES"] = device
        return env

    def submit(self, trial_number: int, trial_dir: Path) -> TrialJob:
        if not self.free:
            raise RuntimeError("no free device slot: the driver submitted more trials than launcher.capacity")
        device = self.free.pop(0)
        trial_dir = Path(trial_dir)
        log = trial_dir / WORKER_LOG
        try:
            proc = self.spawn(trial_dir, env=self._env(device), log_path=log)
        except Exception:
            self.free.insert(0, device)
            raise
        self.procs[trial_number] = proc
        self.job_slot[trial_number] = device
        info = {"launcher": "local", "pid": proc.pid, "device": device, "start_time": time.time(),
                "threads": self.threads if device == "cpu" else None, "log": str(log), "python": sys.executable}
        write_json(trial_dir / LAUNCH, info)
        return TrialJob(trial_number, trial_dir, info)

    def _release(self, job: TrialJob) -> None:
        device = self.job_slot.pop(job.trial_number, None)
        self.procs.pop(job.trial_number, None)
        if device is not None:
            self.free.append(device)

    def poll(self, job: TrialJob) -> JobState:
        proc = self.procs.get(job.trial_number)
        if proc is None:  # re-attached after a driver restart: not our child
            return JobState.RUNNING if _pid_alive(int(job.info.get("pid", -1))) else JobState.FINISHED
        code = proc.poll()
        if code is None:
            return JobState.RUNNING
        job.info["returncode"] = code
        self._release(job)
        return JobState.FINISHED

    def cancel(self, job: TrialJob, reason: str = "") -> None:
        proc = self.procs.get(job.trial_number)
        pid = proc.pid if proc is not None else int(job.info.get("pid", -1))
        if pid > 0:
            _kill_group(pid)
        if proc is not None:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        job.reason = reason or job.reason
        self._release(job)

    def reattach(self, trial_number: int, trial_dir: Path) -> TrialJob | None:
        """A worker left running by a driver that died: found by launch.json's pid and its command line."""
        try:
            info = json.loads((Path(trial_dir) / LAUNCH).read_text())
            pid = int(info["pid"])
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, ValueError, KeyError):
            return None
        # The pid may have been reused: only a process started for this trial folder counts
        # (named on its command line, or, for a warm fork, its working directory).
        folder = str(Path(trial_dir).resolve())
        if not _pid_alive(pid) or (folder not in cmdline and _cwd(pid) != folder):
            return None
        return TrialJob(trial_number, Path(trial_dir), info)

    def close(self) -> None:
        for number, proc in list(self.procs.items()):
            _kill_group(proc.pid)
        self.procs.clear()
