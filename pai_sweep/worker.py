"""One trial in one process: `python -m pai_sweep.worker TRIAL_DIR`.

Reads TRIAL_DIR/run.yaml (groups model, downsize, dendrites, data, train) once into a typed RunSpec,
checked once (load_run_spec: a hand-written run.yaml gets the driver's checks), works in TRIAL_DIR
(PerforatedAI writes ./pai/), and always ends with TRIAL_DIR/result.json: status complete or
failed with a one-line reason, whatever happened (exception, pdb trap, the library's
sys.exit(0), NaN). Only a killed process leaves no result.json; the caller marks that failed.
Importing this module does not import torch. Callers start it with pai_sweep.spawn.spawn_worker.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import random
import resource
import signal
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pai_sweep.check.diagnose import failure_reason
from pai_sweep.errors import ConfigError, os_error_line
from pai_sweep.reads import Reads
from pai_sweep.schema.dendrites import STRUCTURAL, dendrites_config
from pai_sweep.schema.run import RUN_GROUPS, RunSpec, typed_run
from pai_sweep.training import StopRequested, request_stop
from pai_sweep.trial_files import (
    RESULT,
    RESUME_FILE,
    RUN_CONFIG,
    STATUS_COMPLETE,
    STATUS_FAILED,
    TrialResult,
    clean_partial,
    drop_resume_point,
    read_result,
    write_result,
)

START_REFUSED = "PAI_SWEEP_START_REFUSED"  # set on the re-exec after a start point failed to load: train from epoch 0


def load_run_spec(trial_dir: Path, check: bool = True) -> RunSpec:
    """run.yaml as the typed RunSpec: each group onto its schema (unknown keys and wrong types fail here),
    improvement_threshold as its list. check=True: validate_run's checks, the only full validation in the
    worker process (a hand-written run.yaml gets the checks a composed config gets); check=False reads
    another trial's run.yaml only to compare it (branching.seed_trial)."""
    from omegaconf import OmegaConf

    path = Path(trial_dir) / RUN_CONFIG
    if not path.exists():
        raise ConfigError(f"{path} does not exist: write the run config (groups {', '.join(RUN_GROUPS)}) first")
    node = typed_run(OmegaConf.load(path), path)
    if check:
        from pai_sweep.validate import validate_run

        validate_run(node)
    return RunSpec.of(node)


def close_stdin() -> None:
    """No terminal: pdb then reads EOF and raises BdbQuit instead of waiting for a key forever."""
    try:
        fd = os.open(os.devnull, os.O_RDONLY)
        os.dup2(fd, 0)
        os.close(fd)
    except OSError:
        pass
    sys.stdin = open(os.devnull)


def resolve_device(name: str) -> str:
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"train.device={name} but no CUDA device is visible here: use train.device=cpu or auto")
    return name


def seed_everything(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


# With dendrites off the plain loop reads dendrites.maximizing_score and n_epochs_to_switch (its
# patience) and nothing else of the group; train.graphs and train.test_saves go to PerforatedAI only.
_PLAIN_READS = ("dendrites.maximizing_score", "dendrites.n_epochs_to_switch")
ENABLED_READS = Reads(
    selector="dendrites.enabled",
    choices=(True,),
    governs=lambda field: (field.startswith("dendrites.") and field not in _PLAIN_READS) or field in ("train.graphs", "train.test_saves"),
    acts=lambda field, cfg: bool(cfg.dendrites.enabled),
)


def _auto_acts(field: str, cfg: Any) -> bool:
    if cfg.dendrites.preset != "auto":
        return True
    return field.split(".", 1)[1] not in STRUCTURAL


# dendrites=auto replaces the module choices and output dimensions with what it derives from the model.
AUTO_PRESET_READS = Reads(
    selector="dendrites.preset",
    choices=(),
    governs=lambda field: field.startswith("dendrites."),
    acts=_auto_acts,
    hint=lambda field, cfg: "dendrites=auto derives it from the model: use a preset such as dendrites=cnn to set it yourself",
)


class ResumeFailed(Exception):
    """The resume point in a trial folder cannot be used; the worker starts the trial again."""


def _samples(loader: Any) -> int | None:
    try:
        return len(loader.dataset)
    except (AttributeError, TypeError):
        return None


@dataclass
class TrialSetup:
    """What setup_trial built: the session holds the (perforated) model; train and summarise use it."""

    session: Any  # training.PAISession
    data: Any  # data.Data: train/val/test loaders and the task
    train_cfg: Any  # the run spec's train group
    enabled: bool  # dendrites on (or the capacity test)
    capacity_test: bool


def train_trial(spec: RunSpec, trial_dir: Path, result: TrialResult, capacity_test: bool = False,
                max_batches: int | None = None, resume: bool = False) -> None:
    """Set up, train, summarise; fills `result` as it goes (so a failure keeps what was known)."""
    import torch  # not at module level: importing the worker does not import torch

    setup = setup_trial(spec, trial_dir, result, capacity_test=capacity_test, resume=resume)
    try:
        train(setup, max_batches=max_batches)
    finally:
        summarise(setup, result)  # also after a failure: what was trained, and the library's CSVs
    result.status = STATUS_COMPLETE
    result.reason = setup.session.end_reason or "train_fn_returned"
    if torch.cuda.is_available():
        result.extra["max_memory_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)


def setup_trial(spec: RunSpec, trial_dir: Path, result: TrialResult, capacity_test: bool = False,
                resume: bool = False) -> TrialSetup:
    """Build data and model, perforate, make the session (restored from its resume point with `resume`).
    Each part gets its own typed group of `spec` (load_run_spec checked it already)."""
    # Not at module level: importing the worker does not import torch (nor the data and model code that does).
    import torch
    from omegaconf import OmegaConf

    from pai_sweep import branching, perforate
    from pai_sweep.data.loaders import load as load_data
    from pai_sweep.models.build import build_model, fields_used
    from pai_sweep.models.downsize import apply_downsize, model_spec
    from pai_sweep.task import loss_problems
    from pai_sweep.training import PAISession

    train_cfg, d = spec.train, spec.dendrites
    device = resolve_device(str(train_cfg.device))
    result.extra["device"] = device
    if device.startswith("cuda"):  # which GPU the launcher gave it (scripts/gpu_check.sh reads these)
        result.extra["cuda_visible_devices"] = os.environ.get("CUDA_VISIBLE_DEVICES")
        result.extra["gpu_name"] = torch.cuda.get_device_name(torch.device(device))
    seed_everything(int(train_cfg.seed))
    data = load_data(spec.data, batch_size=int(train_cfg.batch_size), seed=int(train_cfg.seed))
    problems = loss_problems(train_cfg, data.task)
    if problems:  # before any training: a loss that does not fit the task learns nothing
        raise ConfigError(problems[0])
    if data.task != "classification" and d.maximizing_score:
        raise ConfigError(
            f"the data's task is {data.task}: the score is the validation loss (lower is better); "
            "set dendrites.maximizing_score=false and train.loss=mse"
        )
    result.maximizing = bool(d.maximizing_score)
    original = build_model(spec.model, data.input_shape, data.num_classes)
    result.original_params = sum(p.numel() for p in original.parameters())
    model_cfg = apply_downsize(spec.model, spec.downsize)  # exactly what is built: downsize=none returns the model as configured
    if model_cfg != model_spec(spec.model):
        seed_everything(int(train_cfg.seed))
        model = build_model(model_cfg, data.input_shape, data.num_classes)
    else:
        model = original
    result.base_params = sum(p.numel() for p in model.parameters())
    result.built = {
        "model": {k: OmegaConf.to_container(model_cfg, resolve=True)[k] for k in sorted(fields_used(model_cfg))},
        "downsize": {} if spec.downsize.name == "none" else dataclasses.asdict(spec.downsize),
        "params": result.base_params, "original_params": result.original_params, "perforated": {}, "knobs": {},
    }
    print(f"pai-sweep: model {model_cfg.name}: {result.base_params:,} parameters (original {result.original_params:,})", flush=True)
    enabled = bool(d.enabled) or capacity_test
    example, _ = next(iter(data.train))
    if enabled and d.preset == "auto":
        from pai_sweep.check.auto import derive  # module choices and dims from this model's forward pass

        derived, why = derive(model, example[:8], d)
        d = dendrites_config(derived)
        print(f"pai-sweep: dendrites=auto: {why}", flush=True)
    if enabled:
        done = perforate.perforate(
            model, d, device=device, example_input=example[:2], graphs=str(train_cfg.graphs),
            test_saves=bool(train_cfg.test_saves), capacity_test=capacity_test,
        )
        model = done.model
        result.extra["perforated"] = len(done.plan.perforated)
        modules = dict(model.named_modules())
        result.built["perforated"] = {p: _class_name(modules, p) for p in done.plan.perforated}
        result.built["knobs"] = done.knobs
        result.extra["auto_tracked"] = done.plan.track_names[len(d.module_names_to_track):] + done.plan.track_params
    else:
        model = model.to(device)
    # Start points for trials that share this run's prefix (branching.py). The one before the first switch: not for a
    # run that started from another's point (its prefix is the parent's; one continuing its own attempt keeps it), nor
    # when this folder has one already (a resumed run). Later points (after each switch, at the cap): every run.
    keeps_points = bool(train_cfg.branch_point) and enabled and not capacity_test
    wants_branch = (keeps_points and (not train_cfg.start_from or result.extra.get("started_from", {}).get("kind") == "continue")
                    and branching.branch_info(trial_dir / branching.BRANCH_DIR) is None)
    run = spec.to_dict()
    session = PAISession(
        model, train_cfg=train_cfg, enabled=enabled, maximizing=bool(d.maximizing_score),
        patience=int(d.n_epochs_to_switch), device=device, trial_dir=trial_dir,
        resume_file=trial_dir / RESUME_FILE if not capacity_test else None,  # written when asked: train.resume, branching, a stop
        generators=(getattr(data.train, "generator", None),),
        resume_every_epoch=bool(train_cfg.resume), branch_dir=trial_dir / branching.BRANCH_DIR if wants_branch else None,
        branch_info={"trial": trial_dir.name}, later_points=keeps_points and bool(train_cfg.later_points),
        point_signature=lambda dendrites, switches: branching.prefix_signature(run, dendrites, switches),
    )
    if resume:
        try:
            session.restore()
        except Exception as exc:
            raise ResumeFailed(failure_reason(exc)) from exc
        result.extra["resumed_at_epoch"] = session.epoch
    if not train_cfg.train_fn and data.task == "classification":
        # what the analysis needs to tell a real gain from sampling noise (binomial error of an accuracy)
        result.extra["score"] = {"kind": "accuracy_percent", "val_samples": _samples(data.val), "test_samples": _samples(data.test)}
    return TrialSetup(session, data, train_cfg, enabled, capacity_test)


def train(setup: TrialSetup, max_batches: int | None = None) -> None:
    """The user's train.train_fn, or the built-in loop, on the set-up session."""
    from pai_sweep import perforate
    from pai_sweep.models.target import resolve_callable
    from pai_sweep.train_loop import classification_loop  # imports torch: see setup_trial

    train_cfg, session = setup.train_cfg, setup.session
    if session.epoch >= session.max_epochs:  # it started from a run its own epoch cap ended (branching.fits)
        session.end_reason = "epoch_cap"
        print(f"pai-sweep: nothing left to train: the run it started from reached train.max_epochs={session.max_epochs} "
              "and what differs never acted", flush=True)
        if setup.enabled:  # no epoch ran to write the library's CSVs (a no-op with graphs=end: summarise writes them)
            perforate.write_graphs()
        return
    if train_cfg.train_fn:
        resolve_callable(train_cfg.train_fn, "train.train_fn")(setup.session, setup.data)
    else:
        classification_loop(setup.session, setup.data, train_cfg, max_batches=max_batches)


def summarise(setup: TrialSetup, result: TrialResult) -> None:
    """What the session trained into `result` (epochs, best and final scores, size); with train.graphs=end,
    PerforatedAI's running CSVs (and its PNG) from the final state. Also after a failure."""
    session = setup.session
    result.epochs = session.epoch
    best = session.best()
    if best is not None:
        result.best_val, result.best_test = best.val, best.test
    if session.records:
        last = session.records[-1]
        result.final_val, result.params, result.dendrites = last.val, last.params, last.dendrites
    if setup.enabled and setup.train_cfg.graphs == "end":
        # the capacity test needs no PNG (the check reads metrics.jsonl and result.json)
        _finish_graphs(result, draw=not setup.capacity_test)


def _seed_start(spec: RunSpec, trial_dir: Path, result: TrialResult) -> bool:
    """train.start_from: copy that state in as this trial's resume point. False (and why, in the log and
    result.json) when it cannot be used: the trial then trains from epoch 0."""
    from pai_sweep import branching

    refused = os.environ.pop(START_REFUSED, "")
    if not refused:
        started, refused = branching.seed_trial(spec.train.start_from, trial_dir, spec.to_dict(),
                                                lambda folder: load_run_spec(folder, check=False).to_dict())
        if started is not None:
            result.extra["started_from"] = started
            return True
    clean_partial(trial_dir)
    result.extra["start_refused"] = refused
    print(f"pai-sweep: not starting from {spec.train.start_from}: {refused}; training from epoch 0", flush=True)
    return False


def _finish_graphs(result: TrialResult, draw: bool) -> None:
    from pai_sweep import perforate

    try:
        perforate.finish_graphs(draw=draw)
    except BaseException as exc:  # noqa: BLE001 - a plotting failure must not fail the trial or hide why it failed
        if isinstance(exc, KeyboardInterrupt):
            raise
        result.extra["graph_error"] = failure_reason(exc)


def _class_name(modules: dict, path: str) -> str:
    """The class of the layer at `path` before PerforatedAI wrapped it (its wrapper keeps it as main_module)."""
    module = modules.get(path.lstrip("."))
    inner = getattr(module, "main_module", module)
    return type(inner).__name__


def run_trial(trial_dir: str | Path, capacity_test: bool = False, max_batches: int | None = None) -> TrialResult:
    """Run the trial in `trial_dir` (chdir there) and write result.json; never raises."""
    start = time.time()
    trial_dir = Path(trial_dir).resolve()
    os.chdir(trial_dir)
    close_stdin()
    existing = read_result(trial_dir)
    if existing is not None:
        print(f"pai-sweep: {trial_dir / RESULT} exists ({existing.status}); nothing to do", flush=True)
        return existing
    result = TrialResult(status=STATUS_FAILED, reason="")
    if not capacity_test:
        signal.signal(signal.SIGUSR1, request_stop)  # the launcher's graceful stop (LocalLauncher.stop_gracefully)
    try:
        spec = load_run_spec(trial_dir)
        resume = bool(spec.train.resume) and not capacity_test and (trial_dir / RESUME_FILE).exists()
        if not resume and clean_partial(trial_dir):
            print("pai-sweep: removed the output of an interrupted earlier attempt; starting again", flush=True)
        if not resume and spec.train.start_from and not capacity_test:
            resume = _seed_start(spec, trial_dir, result)
        train_trial(spec, trial_dir, result, capacity_test=capacity_test, max_batches=max_batches, resume=resume)
    except StopRequested as exc:  # the sweep stops: no result.json, the resume point stays for the run again
        print(f"pai-sweep: {exc}", flush=True)
        return TrialResult(status=STATUS_FAILED, reason=str(exc))
    except ResumeFailed as exc:
        # the resume point does not fit (killed half-way through saving it): start this trial again, clean
        print(f"pai-sweep: cannot resume ({exc}); starting again", flush=True)
        clean_partial(trial_dir)
        sys.stdout.flush()
        env = dict(os.environ)
        if spec.train.start_from:
            env[START_REFUSED] = f"its state did not load ({exc})"  # the re-run must not copy it in again
        os.execve(sys.executable, [sys.executable, "-m", "pai_sweep.worker", str(trial_dir)], env)
    except BaseException as exc:  # noqa: BLE001 - SystemExit and BdbQuit from the library included
        result.status = STATUS_FAILED
        result.reason = failure_reason(exc)
        traceback.print_exc()
        print(f"pai-sweep: trial failed: {result.reason}", flush=True)
    result.seconds = round(time.time() - start, 3)
    # CPU seconds of this process and its threads (a forked worker starts at zero): the trial's compute, which
    # unlike wall seconds does not grow when other work shares the machine
    usage = resource.getrusage(resource.RUSAGE_SELF)
    result.extra["cpu_seconds"] = round(usage.ru_utime + usage.ru_stime, 3)
    drop_resume_point(trial_dir)  # only a killed run needs it
    try:
        write_result(trial_dir, result)
    except OSError as exc:  # disk full, read-only: the driver finds no result.json and records why (its own write fails too)
        result.status, result.reason = STATUS_FAILED, f"cannot write {RESULT}: {os_error_line(exc, fix=False)} ({result.reason})"
    try:
        print(f"pai-sweep: {result.status}: {result.reason}", flush=True)
    except OSError:  # worker.log is on the same full disk
        pass
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pai_sweep.worker", description="Run one trial in TRIAL_DIR.")
    parser.add_argument("trial_dir")
    parser.add_argument("--capacity-test", action="store_true", help="the library's 3-dendrite smoke test (preflight)")
    parser.add_argument("--max-batches", type=int, default=None, help="train on at most this many batches per epoch")
    args = parser.parse_args(argv)
    result = run_trial(args.trial_dir, capacity_test=args.capacity_test, max_batches=args.max_batches)
    # The exit code is a convenience; result.json is the record.
    return 0 if result.status == STATUS_COMPLETE else 1


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    # os._exit: no library atexit hook or lingering thread can change the code or hang the exit.
    os._exit(code)
