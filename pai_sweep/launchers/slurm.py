"""Trials as submitit jobs: SLURM (launcher=slurm) or submitit's local executor (launcher=submitit_local).

Each job runs `python -m pai_sweep.worker TRIAL_DIR` in the trial folder as its own process (WorkerJob);
the job needs only the shared file system, never the study or MLflow. WorkerJob is checkpointable:
on submitit's preemption/time-limit signal it stops the worker and requeues the job, so the trial
runs again (restarts cleanly, or resumes where the worker can) and is not counted as failed.
launch.json in the trial folder records the job id, node and log paths; a new driver re-attaches
to queued/running jobs from it instead of submitting them again.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import submitit
from submitit.core.utils import DelayedSubmission, FailedJobError

from pai_sweep.errors import ConfigError, LauncherError
from pai_sweep.launchers.base import JobState, Launcher, TrialJob
from pai_sweep.launchers.processes import Pid, WorkerRun, no_result, pid_alive, stop_group, tail
from pai_sweep.launchers.slurm_queue import COMMAND_TIMEOUT_S, SlurmQueue, check_partition, describe_end, to_job_state
from pai_sweep.trial_files import LAUNCH, RESULT, RUN_CONFIG, WORKER_LOG, read_result, write_json

_STOP_GRACE_S = 20.0  # seconds a preempted worker gets between SIGTERM and SIGKILL
_SIGNALLED_WAIT_S = 30.0  # SLURM's default KillWait: how long a signalled job may still be told what comes next
_LOST_AFTER_S = 300.0  # a job the scheduler never reports for this long is LOST

# submitit's SLURM parameters that launcher.* keys already set (additional_parameters must not repeat them).
_OWN = {"partition": "partition", "account": "account", "qos": "qos", "time": "time_min",
        "cpus_per_task": "cpus_per_trial", "gpus_per_node": "gpus_per_trial", "num_gpus": "gpus_per_trial",
        "mem": "mem_gb", "setup": "setup", "job_name": "(set per trial)", "array_parallelism": "array_parallelism"}


def slurm_parameter_names() -> list[str]:
    """The names submitit accepts for SLURM jobs (its own list), less those launcher.* sets."""
    return sorted(set(submitit.SlurmExecutor._valid_parameters()) - set(_OWN))


def check_config(cfg: Any) -> None:
    """Compose-time checks of a slurm/submitit_local launcher config (no scheduler needed)."""
    extra = dict(cfg.additional_parameters or {})
    for name in extra:
        if name in _OWN:
            raise ConfigError(f"launcher.additional_parameters.{name} is set by launcher.{_OWN[name]}: use that key instead")
    unknown = sorted(set(extra) - set(slurm_parameter_names()))
    if unknown:
        raise ConfigError(f"launcher.additional_parameters has names submitit rejects: {', '.join(unknown)}; "
                          f"valid names: {', '.join(slurm_parameter_names())} "
                          "(raw sbatch flags go in launcher.additional_parameters.additional_parameters)")
    for key, low in (("gpus_per_trial", 0), ("cpus_per_trial", 1), ("time_min", 1), ("max_requeues", 0)):
        if cfg[key] is None or cfg[key] < low:
            raise ConfigError(f"launcher.{key}={cfg[key]!r} must be >= {low}")
    if cfg.mem_gb is not None and cfg.mem_gb <= 0:
        raise ConfigError(f"launcher.mem_gb={cfg.mem_gb!r} must be > 0, or null for the partition's default")
    if not cfg.poll_interval or cfg.poll_interval <= 0:
        raise ConfigError(f"launcher.poll_interval={cfg.poll_interval!r} must be > 0 seconds")
    if (cfg.get("trials_per_device") or 1) > 1:
        raise ConfigError(f"launcher.trials_per_device={cfg.trials_per_device} is for launcher=local: on SLURM each trial is "
                          "one job; to share GPUs use the cluster's GPU sharing where configured (e.g. launcher.gpus_per_trial=0 "
                          "+launcher.additional_parameters.gres=shard:1), see docs/slurm.md")


class WorkerJob:
    """What a job runs: the worker in the trial folder, one process per trial. Checkpointable for submitit."""

    def __init__(self, trial_dir: str, max_requeues: int, requeues: int = 0):
        self.trial_dir = trial_dir
        self.max_requeues = max_requeues
        self.requeues = requeues  # submitit's own requeues (SLURM counts every requeue in SLURM_RESTART_COUNT)
        self._proc: WorkerRun | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "_proc"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._proc = None

    def __call__(self) -> int:
        trial_dir = Path(self.trial_dir)
        host = socket.gethostname()
        if not (trial_dir / RUN_CONFIG).is_file():
            raise RuntimeError(f"{trial_dir / RUN_CONFIG} is not visible on {host}: the sweep folder must be on a "
                               "file system shared by the driver and the nodes")
        restarts = int(os.environ.get("SLURM_RESTART_COUNT") or self.requeues)
        if restarts > self.max_requeues:
            raise RuntimeError(f"requeued {restarts} times, more than launcher.max_requeues={self.max_requeues}")
        if restarts and self._set_aside_result(trial_dir, restarts):
            return 0  # the trial had completed before the requeue: nothing to run again
        env: dict[str, str] = {}
        cpus = os.environ.get("SLURM_CPUS_PER_TASK")
        if cpus:  # torch would otherwise use every core of a shared node
            for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "PAI_SWEEP_THREADS"):
                env[name] = cpus
        job_id = _own_job_id()
        with open(trial_dir / WORKER_LOG, "a") as log:
            log.write(f"--- pai-sweep: worker starts on {host}, job {job_id}, run {restarts + 1}\n")
        self._proc = WorkerRun.start(trial_dir, env=env, log_path=trial_dir / WORKER_LOG)  # own session
        folder = os.environ.get("SUBMITIT_FOLDER")
        if folder:  # lets a local cancel reach the worker, which runs in its own session
            Path(folder, f"{job_id}_worker.pid").write_text(str(self._proc.pid))
        try:
            code = self._proc.wait()
        finally:
            if self._proc.poll() is None:  # still running (an exception here): its group goes too
                self._proc.stop(grace=_STOP_GRACE_S, kill_wait=5.0)
        if code < 0 and read_result(trial_dir) is None:
            # Killed by a signal: the scheduler is preempting, requeueing or cancelling this job. Wait for
            # its next step (submitit's USR2 -> checkpoint -> requeue, or SIGKILL) instead of failing first.
            time.sleep(_SIGNALLED_WAIT_S)
        if read_result(trial_dir) is None:
            raise RuntimeError(f"{no_result(code)}; worker.log: {tail(trial_dir / WORKER_LOG)}")
        return code

    @staticmethod
    def _set_aside_result(trial_dir: Path, restarts: int) -> bool:
        """Before a requeued run: True when the trial already completed; a failed record from the
        interrupted run is moved aside so the new run starts clean."""
        result = read_result(trial_dir)
        if result is None:
            return False
        if result.ok:
            return True
        os.replace(trial_dir / RESULT, trial_dir / f"result.before-requeue-{restarts}.json")
        return False

    def checkpoint(self) -> DelayedSubmission | None:
        """submitit calls this on preemption or time limit: stop the worker, ask for a requeue."""
        if self._proc is not None and pid_alive(self._proc.pid):
            # a signal handler while the main thread waits on the worker: stop_group waits by pid, not on Popen
            self._proc.stop(grace=_STOP_GRACE_S, kill_wait=5.0)
        if self.requeues + 1 > self.max_requeues:
            return None  # submitit then ends the job as failed
        return DelayedSubmission(type(self)(self.trial_dir, self.max_requeues, self.requeues + 1))


def _own_job_id() -> str:
    """This job's id as the driver knows it: ARRAYID_TASK for a task of a job array."""
    array, task = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
    if array and task:
        return f"{array}_{task}"
    return os.environ.get("SLURM_JOB_ID") or os.environ.get("SUBMITIT_LOCAL_JOB_ID", "?")


class _TimedSlurmExecutor(submitit.SlurmExecutor):
    """submitit's SLURM executor whose sbatch has a timeout: a hung controller must not hang the driver."""

    def _make_submission_command(self, submission_file_path: Path) -> list[str]:
        return ["timeout", str(int(COMMAND_TIMEOUT_S)), "sbatch", str(submission_file_path)]

    def _internal_process_submissions(self, delayed_submissions: list[DelayedSubmission]) -> list[Any]:
        # submitit submits an array through a fresh SlurmExecutor it looks up by name in its module:
        # make that one ours too, so the array's sbatch gets the same timeout.
        module = sys.modules[submitit.SlurmExecutor.__module__]
        module.SlurmExecutor = _TimedSlurmExecutor
        try:
            return super()._internal_process_submissions(delayed_submissions)
        finally:
            module.SlurmExecutor = submitit.SlurmExecutor


class SubmititLauncher(Launcher):
    """launcher.name=slurm: one SLURM job per trial; launcher.name=submitit_local: submitit's local executor."""

    follows_reattached = True  # jobs outlive the driver: a new driver follows them, it does not run them again

    def __init__(self, launcher_cfg: Any, sweep_dir: Path, in_flight: int):
        check_config(launcher_cfg)
        self.cfg = launcher_cfg
        self.kind = launcher_cfg.name
        self.cluster = "slurm" if self.kind == "slurm" else "local"
        self.sweep_dir = Path(sweep_dir).resolve()
        self.capacity = max(1, int(in_flight))
        self.folder = self._job_folder()
        self.queue = SlurmQueue(launcher_cfg.poll_interval)
        self.jobs: dict[str, Any] = {}  # job id -> submitit Job (only for jobs submitted by this object)
        self.cancelled: dict[str, str] = {}  # job id -> our own cancel reason
        if self.cluster == "slurm":
            check_partition(launcher_cfg)
        self.executor = self._make_executor()

    # ---- setup ----
    def _job_folder(self) -> Path:
        if self.cfg.folder:
            folder = Path(self.cfg.folder).expanduser().resolve()
            if not folder.is_dir():
                raise LauncherError(f"launcher.folder={self.cfg.folder} does not exist: create it on a file system "
                                    "the nodes share (or leave it null for <sweep dir>/slurm)")
        else:
            folder = self.sweep_dir / "slurm"
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise LauncherError(f"cannot create the job folder {folder}: {exc.strerror}; set launcher.folder "
                                    "to a shared folder you can write") from None
        if not os.access(folder, os.W_OK):
            raise LauncherError(f"launcher.folder {folder} is not writable: pick a shared folder you can write")
        return folder

    def _make_executor(self) -> submitit.AutoExecutor:
        cfg = self.cfg
        executor = submitit.AutoExecutor(folder=self.folder, cluster=self.cluster,
                                         slurm_max_num_timeout=int(cfg.max_requeues))
        params: dict[str, Any] = {"timeout_min": int(cfg.time_min), "cpus_per_task": int(cfg.cpus_per_trial),
                                  "gpus_per_node": int(cfg.gpus_per_trial) or None,
                                  "mem_gb": float(cfg.mem_gb) if cfg.mem_gb else None}
        setup = list(cfg.setup or [])
        if self.cluster == "slurm":
            # A failing setup line (a missing module or venv) must fail the job, not run the worker elsewhere.
            params.update(slurm_setup=["set -e", *setup, "set +e"] if setup else None,
                          slurm_partition=cfg.partition, slurm_account=cfg.account, slurm_qos=cfg.qos,
                          slurm_stderr_to_stdout=False,
                          **{f"slurm_{k}": v for k, v in dict(cfg.additional_parameters or {}).items()})
            if cfg.get("use_array"):
                params["slurm_array_parallelism"] = int(cfg.array_parallelism)
            executor._executor.__class__ = _TimedSlurmExecutor  # sbatch with a timeout, arrays included
        else:
            params.update(local_setup=setup or None)
        try:
            executor.update_parameters(**{k: v for k, v in params.items() if v is not None})
        except (ValueError, NameError, AssertionError) as exc:
            raise ConfigError(f"launcher config rejected by submitit: {' '.join(str(exc).split())[:600]}") from None
        return executor

    # ---- the Launcher interface ----
    def submit(self, trial_number: int, trial_dir: Path) -> TrialJob:
        trial_dir = Path(trial_dir).resolve()
        if not (trial_dir / RUN_CONFIG).is_file():
            raise LauncherError(f"{trial_dir / RUN_CONFIG} is missing: the driver writes it before submitting")
        self.executor.update_parameters(name=f"pai-{self.sweep_dir.name}-{trial_number}")
        try:
            job = self.executor.submit(WorkerJob(str(trial_dir), int(self.cfg.max_requeues)))
        except (FailedJobError, OSError, subprocess.SubprocessError) as exc:
            raise LauncherError(f"submitting trial {trial_number} failed: {' '.join(str(exc).split())[:600]}") from None
        return self._record(trial_number, trial_dir, job)

    def submit_many(self, trials: list[tuple[int, Path]]) -> list[TrialJob | Exception]:
        """With launcher.use_array: the trials ready at the same moment go in as one job array
        (task N of array A is job A_N: polled, requeued, cancelled and re-attached on its own)."""
        if not self.cfg.get("use_array") or len(trials) < 2:
            return super().submit_many(trials)
        trials = [(number, Path(trial_dir).resolve()) for number, trial_dir in trials]
        for number, trial_dir in trials:
            if not (trial_dir / RUN_CONFIG).is_file():
                return super().submit_many(trials)  # each missing run.yaml fails its own trial
        numbers = [number for number, _ in trials]
        self.executor.update_parameters(name=f"pai-{self.sweep_dir.name}-{numbers[0]}..{numbers[-1]}")
        try:
            with self.executor.batch():
                jobs = [self.executor.submit(WorkerJob(str(trial_dir), int(self.cfg.max_requeues))) for _, trial_dir in trials]
        except (FailedJobError, OSError, subprocess.SubprocessError) as exc:
            error = LauncherError(f"submitting trials {', '.join(map(str, numbers))} as a job array failed: "
                                  f"{' '.join(str(exc).split())[:600]}")
            return [error for _ in trials]
        return [self._record(number, trial_dir, job) for (number, trial_dir), job in zip(trials, jobs)]

    def _record(self, trial_number: int, trial_dir: Path, job: Any) -> TrialJob:
        """launch.json for a submitted job, and the scheduler starts following it."""
        job_id = str(job.job_id)
        self.jobs[job_id] = job
        info = {"launcher": self.kind, "job_id": job_id, "folder": str(self.folder), "submitted_at": time.time(),
                "stdout": str(job.paths.stdout), "stderr": str(job.paths.stderr),
                "log": str(trial_dir / WORKER_LOG), "partition": self.cfg.partition,
                "node": None if self.cluster == "slurm" else socket.gethostname(),
                "device": f"{'SLURM' if self.cluster == 'slurm' else 'local submitit'} job {job_id}"}  # progress lines
        write_json(trial_dir / LAUNCH, info)
        if self.cluster == "slurm":
            self.queue.follow(job_id)
        return TrialJob(trial_number, trial_dir, info)

    def poll(self, job: TrialJob) -> JobState:
        job_id = str(job.info["job_id"])
        state = self._poll_slurm(job, job_id) if self.cluster == "slurm" else self._poll_local(job, job_id)
        if state is JobState.FAILED and not job.reason:
            job.reason = self._failure_reason(job, job_id)
        return state

    def _poll_slurm(self, job: TrialJob, job_id: str) -> JobState:
        record = self.queue.get(job_id)
        if record is None:
            waited = time.time() - float(job.info.get("submitted_at") or time.time())
            if waited > _LOST_AFTER_S and not self.queue.last_error:
                job.reason = f"SLURM job {job_id} is unknown to sacct and squeue"
                return JobState.LOST
            return JobState.PENDING
        if record.node and record.node != job.info.get("node"):
            job.info["node"] = record.node
            write_json(job.trial_dir / LAUNCH, job.info)
        job.info["slurm_state"] = record.detail
        return to_job_state(record.state)

    def _poll_local(self, job: TrialJob, job_id: str) -> JobState:
        sub = self.jobs.get(job_id)
        if sub is not None and sub._process is not None:
            if sub._process.poll() is None:
                return JobState.RUNNING
        elif pid_alive(int(job_id)):
            return JobState.RUNNING
        if job_id in self.cancelled:
            return JobState.FAILED
        outcome = _outcome(Path(job.info["folder"]), job_id)
        if outcome == "success" or read_result(job.trial_dir) is not None:
            return JobState.FINISHED
        return JobState.FAILED

    def _failure_reason(self, job: TrialJob, job_id: str) -> str:
        if job_id in self.cancelled:
            return self.cancelled[job_id]
        head = describe_end(job_id, job.info.get("slurm_state") or "", job.info.get("node"), self.cfg.time_min)
        last = tail(Path(job.info.get("stderr", ""))) or tail(Path(job.info.get("log", "")))
        return f"{head}; log tail: {last}" if last else head

    def cancel(self, job: TrialJob, reason: str = "") -> None:
        job_id = str(job.info["job_id"])
        self.cancelled[job_id] = reason or "cancelled by the driver"
        job.reason = self.cancelled[job_id]
        if self.cluster == "slurm":
            try:
                subprocess.run(["scancel", job_id], capture_output=True, timeout=COMMAND_TIMEOUT_S)
            except (OSError, subprocess.SubprocessError):
                pass  # the next poll reports what the scheduler did
            return
        # submitit's local job ignores SIGTERM: stop the worker first, then the controller.
        try:
            worker = int(Path(job.info["folder"], f"{job_id}_worker.pid").read_text())
            if pid_alive(worker):
                stop_group(Pid(worker), grace=5.0, kill_wait=5.0)
        except (OSError, ValueError):
            pass
        if pid_alive(int(job_id)):
            try:
                os.kill(int(job_id), signal.SIGINT)
            except ProcessLookupError:
                pass
        sub = self.jobs.get(job_id)
        if sub is not None and sub._process is not None:
            try:
                sub._process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                sub._process.kill()

    def reattach(self, trial_number: int, trial_dir: Path) -> TrialJob | None:
        """A job a previous driver submitted that is still queued or running, from launch.json."""
        trial_dir = Path(trial_dir).resolve()
        try:
            info = json.loads((trial_dir / LAUNCH).read_text())
            job_id = str(info["job_id"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if info.get("launcher") != self.kind:
            return None
        job = TrialJob(trial_number, trial_dir, info)
        if self.cluster == "slurm":
            record = self.queue.get(job_id, force=True)
            if record is None or to_job_state(record.state) not in (JobState.PENDING, JobState.RUNNING):
                self.queue.active.discard(job_id)
                return None
            return job
        return job if pid_alive(int(job_id)) else None

    def close(self) -> None:
        self.jobs.clear()


def _outcome(folder: Path, job_id: str) -> str:
    """submitit's result pickle of a local job: "success", "error", or "" when there is none."""
    path = folder / f"{job_id}_0_result.pkl"
    if not path.exists():
        return ""
    try:
        from submitit.core.utils import pickle_load

        return str(pickle_load(path)[0])
    except Exception:  # a half-written or foreign pickle says nothing
        return ""
