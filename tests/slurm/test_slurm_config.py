"""The slurm launcher's config and its mapping to sbatch, without a cluster (sbatch and sinfo faked on PATH)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from pai_sweep.compose import compose
from pai_sweep.errors import ConfigError, LauncherError
from pai_sweep.launchers import make_launcher
from pai_sweep.launchers.base import JobState, TrialJob
from pai_sweep.launchers.slurm import slurm_parameter_names

FAKE_SBATCH = """#!/bin/sh
cp "$1" "{record}"
echo "Submitted batch job 4242"
"""
FAKE_SINFO = """#!/bin/sh
printf 'debug*\\ngpu\\n'
"""


@pytest.fixture
def fake_slurm(tmp_path, monkeypatch) -> Path:
    """sbatch that records the script it is given; sinfo that lists partitions debug and gpu."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    record = tmp_path / "submitted.sh"
    for name, text in (("sbatch", FAKE_SBATCH.format(record=record)), ("sinfo", FAKE_SINFO), ("srun", "#!/bin/sh\n")):
        path = bin_dir / name
        path.write_text(text)
        path.chmod(path.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return record


def test_launcher_options_map_to_sbatch_flags(tmp_path, fake_slurm):
    cfg = compose(["launcher=slurm", "launcher.partition=gpu", "launcher.account=lab", "launcher.qos=high",
                   "launcher.gpus_per_trial=1", "launcher.cpus_per_trial=6", "launcher.mem_gb=12",
                   "launcher.time_min=45", "+launcher.additional_parameters.constraint=a100",
                   "launcher.setup=['module load cuda','source /opt/venv/bin/activate']"])
    trial = tmp_path / "sweep" / "trials" / "3"
    trial.mkdir(parents=True)
    (trial / "run.yaml").write_text("model: {}\n")
    launcher = make_launcher(cfg.launcher, tmp_path / "sweep", 2)
    job = launcher.submit(3, trial)
    script = fake_slurm.read_text()
    for flag in ("--partition=gpu", "--account=lab", "--qos=high", "--gpus-per-node=1", "--cpus-per-task=6",
                 "--mem=12GB", "--time=45", "--constraint=a100", "--job-name=pai-sweep-3", "--signal=USR2@90"):
        assert f"#SBATCH {flag}\n" in script, flag
    # setup lines run under `set -e`: a failing one ends the job instead of running the worker elsewhere
    assert "set -e\nmodule load cuda\nsource /opt/venv/bin/activate\nset +e" in script
    assert job.info["job_id"] == "4242" and launcher.capacity == 2
    launch = json.loads((trial / "launch.json").read_text())
    assert launch["job_id"] == "4242" and launch["launcher"] == "slurm"
    assert launch["stderr"].endswith("slurm/4242_0_log.err") and launch["log"].endswith("trials/3/worker.log")


def test_cpu_trials_send_no_gpu_or_memory_flags(tmp_path, fake_slurm):
    cfg = compose(["launcher=slurm", "launcher.gpus_per_trial=0"])
    trial = tmp_path / "sw" / "trials" / "0"
    trial.mkdir(parents=True)
    (trial / "run.yaml").write_text("model: {}\n")
    make_launcher(cfg.launcher, tmp_path / "sw", 1).submit(0, trial)
    script = fake_slurm.read_text()
    assert "--gpus-per-node" not in script and "--mem=" not in script and "--partition" not in script


def test_unknown_partition_fails_before_submission_listing_partitions(tmp_path, fake_slurm):
    cfg = compose(["launcher=slurm", "launcher.partition=gpux"])
    with pytest.raises(LauncherError, match=r"launcher.partition='gpux' .* sinfo lists: debug, gpu"):
        make_launcher(cfg.launcher, tmp_path / "sw", 1)
    assert not fake_slurm.exists()


def test_missing_shared_folder_fails_before_submission(tmp_path, fake_slurm):
    cfg = compose(["launcher=slurm", f"launcher.folder={tmp_path}/not/there"])
    with pytest.raises(LauncherError, match="launcher.folder=.*/not/there does not exist"):
        make_launcher(cfg.launcher, tmp_path / "sw", 1)


def test_sbatch_refusal_is_a_launcher_error(tmp_path, fake_slurm):
    fake = Path(os.environ["PATH"].split(os.pathsep)[0]) / "sbatch"
    fake.write_text("#!/bin/sh\necho 'sbatch: error: Invalid account or account/partition combination' >&2\nexit 1\n")
    trial = tmp_path / "sw" / "trials" / "0"
    trial.mkdir(parents=True)
    (trial / "run.yaml").write_text("model: {}\n")
    launcher = make_launcher(compose(["launcher=slurm"]).launcher, tmp_path / "sw", 1)
    with pytest.raises(LauncherError, match="submitting trial 0 failed: .*Invalid account"):
        launcher.submit(0, trial)


@pytest.mark.parametrize(
    "override, message",
    [
        ("+launcher.additional_parameters.gpu_type=a100", "names submitit rejects: gpu_type; valid names: .*constraint"),
        ("+launcher.additional_parameters.time=5", "additional_parameters.time is set by launcher.time_min"),
        ("launcher.cpus_per_trial=0", "launcher.cpus_per_trial=0 must be >= 1"),
        ("launcher.poll_interval=0", "launcher.poll_interval=0.0 must be > 0"),
        ("launcher.array_parallelism=0", "launcher.array_parallelism=0 must be >= 1"),
        ("launcher.trials_per_device=2", "trials_per_device=2 is for launcher=local: on SLURM each trial is one job"),
    ],
)
def test_bad_launcher_config_fails_at_compose_time(override, message):
    with pytest.raises(ConfigError, match=message):
        compose(["launcher=slurm", override])


def test_use_array_submits_the_trials_of_one_refill_as_one_array(tmp_path, fake_slurm):
    bin_dir = fake_slurm.parent / "bin"
    _fake(bin_dir, "sbatch", f'cp "$1" "{fake_slurm}"\necho "Submitted batch job 4242"\n')
    # the array's sbatch runs under a timeout too (a hung controller must not hang the driver)
    _fake(bin_dir, "timeout", f'echo "$@" >> "{tmp_path}/timeout.log"\nshift\nexec "$@"\n')
    cfg = compose(["launcher=slurm", "launcher.use_array=true", "launcher.array_parallelism=2"])
    trials = []
    for n in (5, 6, 7):
        trial = tmp_path / "sw" / "trials" / str(n)
        trial.mkdir(parents=True)
        (trial / "run.yaml").write_text("model: {}\n")
        trials.append((n, trial))
    launcher = make_launcher(cfg.launcher, tmp_path / "sw", 3)
    jobs = launcher.submit_many(trials)
    script = fake_slurm.read_text()
    assert "#SBATCH --array=0-2%2\n" in script and "#SBATCH --job-name=pai-sw-5..7\n" in script
    assert (tmp_path / "timeout.log").read_text().split()[1] == "sbatch"
    assert [j.info["job_id"] for j in jobs] == ["4242_0", "4242_1", "4242_2"]
    for (n, trial), job in zip(trials, jobs):
        launch = json.loads((trial / "launch.json").read_text())
        assert job.trial_number == n and launch["job_id"] == job.info["job_id"]
        assert launch["stderr"].endswith(f"slurm/{job.info['job_id']}_0_log.err")
    # one trial ready on its own is a plain job; without use_array each trial is one
    assert launcher.submit_many(trials[:1])[0].info["job_id"] == "4242"
    assert "--array" not in fake_slurm.read_text()
    plain = make_launcher(compose(["launcher=slurm"]).launcher, tmp_path / "sw", 3)
    assert [j.info["job_id"] for j in plain.submit_many(trials[:2])] == ["4242", "4242"]


def _two_trial_folders(tmp_path):
    """(number, folder) of trials 0 and 1 under tmp_path/sw, each with a run.yaml."""
    trials = []
    for n in (0, 1):
        trial = tmp_path / "sw" / "trials" / str(n)
        trial.mkdir(parents=True)
        (trial / "run.yaml").write_text("model: {}\n")
        trials.append((n, trial))
    return trials


def test_a_refused_array_fails_each_of_its_trials(tmp_path, fake_slurm):
    _fake(fake_slurm.parent / "bin", "sbatch", "echo 'sbatch: error: QOSMaxSubmitJobPerUserLimit' >&2\nexit 1\n")
    trials = _two_trial_folders(tmp_path)
    launcher = make_launcher(compose(["launcher=slurm", "launcher.use_array=true"]).launcher, tmp_path / "sw", 2)
    errors = launcher.submit_many(trials)
    assert len(errors) == 2 and all(isinstance(e, LauncherError) for e in errors)
    assert str(errors[0]).startswith("submitting trials 0, 1 as a job array failed: ") and "QOSMaxSubmitJobPerUserLimit" in str(errors[0])


def test_valid_names_come_from_submitit():
    names = slurm_parameter_names()
    assert {"constraint", "exclude", "gres", "additional_parameters"} <= set(names)
    assert "partition" not in names  # set through launcher.partition


def test_every_submitit_launcher_option_composes():
    for name in ("slurm", "submitit_local"):
        assert compose([f"launcher={name}"]).launcher.name == name


def _fake(bin_dir: Path, name: str, text: str) -> None:
    path = bin_dir / name
    path.write_text("#!/bin/sh\n" + text)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


def _submitted(tmp_path) -> tuple:
    trial = tmp_path / "sw" / "trials" / "0"
    trial.mkdir(parents=True)
    (trial / "run.yaml").write_text("model: {}\n")
    launcher = make_launcher(compose(["launcher=slurm", "launcher.poll_interval=1"]).launcher, tmp_path / "sw", 1)
    return launcher, launcher.submit(0, trial)


@pytest.mark.parametrize(
    "squeue_line, state, reason",
    [
        ("4242|PENDING|(Priority)|Priority", JobState.PENDING, ""),
        ("4242|RUNNING|gpu07|None", JobState.RUNNING, ""),
        ("4242|PREEMPTED|gpu07|None", JobState.PENDING, ""),  # requeued next
        ("4242|COMPLETED|gpu07|None", JobState.FINISHED, ""),
        ("4242|CANCELLED|gpu07|None", JobState.FAILED, "cancelled by the scheduler (SLURM job 4242 CANCELLED on gpu07)"),
        ("4242|NODE_FAIL|gpu07|NodeDown", JobState.FAILED, "the node died (SLURM job 4242 NODE_FAIL"),
        ("4242|TIMEOUT|gpu07|TimeLimit", JobState.FAILED, "hit the time limit launcher.time_min=120"),
        ("4242|OUT_OF_MEMORY|gpu07|None", JobState.FAILED, "out of memory: raise launcher.mem_gb"),
    ],
)
def test_scheduler_states_map_to_job_states_and_reasons(tmp_path, fake_slurm, squeue_line, state, reason):
    _fake(fake_slurm.parent / "bin", "squeue", f"echo '{squeue_line}'\n")
    launcher, job = _submitted(tmp_path)
    (tmp_path / "sw" / "slurm" / "4242_0_log.err").write_text("submitit INFO (x) - Starting\nslurmstepd: error: oom-kill event\n")
    assert launcher.poll(job) is state
    assert job.reason.startswith(reason)
    if state is JobState.FAILED:
        assert job.reason.endswith("log tail: slurmstepd: error: oom-kill event")  # submitit's own lines left out
    if state is not JobState.PENDING:
        assert json.loads((job.trial_dir / "launch.json").read_text())["node"] == "gpu07"


def test_a_hung_scheduler_never_hangs_the_driver(tmp_path, fake_slurm, monkeypatch):
    import pai_sweep.launchers.slurm_queue as queue

    monkeypatch.setattr(queue, "COMMAND_TIMEOUT_S", 1.0)
    for name in ("squeue", "sacct"):
        _fake(fake_slurm.parent / "bin", name, "sleep 30 | cat\n")  # a child holds the pipe too
    launcher, job = _submitted(tmp_path)
    assert launcher.poll(job) is JobState.PENDING  # last known state, after ~2 s, not 60
    assert "did not answer within 1s" in launcher.queue.last_error


def test_worker_job_gives_up_after_max_requeues(tmp_path, monkeypatch):
    from pai_sweep.launchers.slurm import WorkerJob

    (tmp_path / "run.yaml").write_text("model: {}\n")
    monkeypatch.setenv("SLURM_RESTART_COUNT", "4")
    with pytest.raises(RuntimeError, match="requeued 4 times, more than launcher.max_requeues=3"):
        WorkerJob(str(tmp_path), max_requeues=3)()
    job = WorkerJob(str(tmp_path), max_requeues=1)
    assert job.checkpoint().function.requeues == 1  # submitit's checkpoint: requeue with the count raised
    assert WorkerJob(str(tmp_path), max_requeues=1, requeues=1).checkpoint() is None  # then the job fails


def test_requeued_run_sets_a_failed_record_aside_and_skips_a_complete_one(tmp_path, monkeypatch):
    from pai_sweep.launchers.slurm import WorkerJob
    from pai_sweep.trial_files import TrialResult, write_result

    (tmp_path / "run.yaml").write_text("model: {}\n")
    monkeypatch.setenv("SLURM_RESTART_COUNT", "1")
    write_result(tmp_path, TrialResult(status="complete", reason="epoch_cap"))
    assert WorkerJob(str(tmp_path), max_requeues=3)() == 0  # finished before the requeue: nothing runs
    assert not (tmp_path / "worker.log").exists()
    write_result(tmp_path, TrialResult(status="failed", reason="interrupted"))
    assert WorkerJob._set_aside_result(tmp_path, 1) is False
    assert not (tmp_path / "result.json").exists() and (tmp_path / "result.before-requeue-1.json").exists()


def test_a_pending_array_task_cancelled_without_a_trace_is_a_failure(tmp_path, fake_slurm):
    """SLURM keeps no record of an array task cancelled while pending: once squeue and sacct both answer,
    know its array and not it, the trial fails as cancelled instead of waiting to be declared lost."""
    bin_dir = fake_slurm.parent / "bin"
    _fake(bin_dir, "sbatch", 'echo "Submitted batch job 4242"\n')
    _fake(bin_dir, "squeue", "echo '4242_0|RUNNING|gpu07|None'\n")
    _fake(bin_dir, "sacct", f'echo "$@" > "{tmp_path}/sacct.args"\necho "4242_0|RUNNING|gpu07|0:0|None"\n')
    trials = _two_trial_folders(tmp_path)
    launcher = make_launcher(compose(["launcher=slurm", "launcher.use_array=true", "launcher.poll_interval=1"]).launcher,
                             tmp_path / "sw", 2)
    jobs = launcher.submit_many(trials)
    assert launcher.poll(jobs[1]) is JobState.FAILED
    assert jobs[1].reason.startswith("cancelled by the scheduler (SLURM job 4242_1 CANCELLED before it started")
    assert (tmp_path / "sacct.args").read_text().split()[-1] == "4242_1,4242"  # asked about the task and its array
    assert launcher.poll(jobs[0]) is JobState.RUNNING
    _fake(bin_dir, "sacct", "exit 1\n")  # accounting down: nothing is concluded
    launcher2 = make_launcher(compose(["launcher=slurm", "launcher.use_array=true"]).launcher, tmp_path / "sw", 2)
    job = TrialJob(1, trials[1][1], json.loads((trials[1][1] / "launch.json").read_text()))
    assert launcher2.poll(job) is JobState.PENDING and not job.reason
