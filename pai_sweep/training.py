"""The PAI epoch loop, built on one small API (`PAISession`) that a user's own training function can use too.

    def my_train_fn(session, data):                    # train.train_fn=mypkg.train.my_train_fn
        model, opt = session.model, session.optimizer()
        while True:
            ...train one epoch of `model` with `opt`...
            val, train, test = ...scores...
            model, restructured, complete = session.report(val, train=train, test=test, loss=mean_loss)
            if complete:
                break
            if restructured:
                opt = session.optimizer()                  # rebuilt with the configured args

`report` hands the scores to PerforatedAI (extra scores before the validation score), rebuilds
the optimizer after a restructure, enforces train.max_epochs, refuses NaN/inf, and appends
one EpochRecord to metrics.jsonl. With dendrites.enabled=false the same calls train the
plain model (no PerforatedAI at all), so baselines run through the same loop. The built-in loop (no
train.train_fn) is one such function: train_loop.py.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any, Callable

from pai_sweep.errors import PaiSweepError
from pai_sweep.models.target import resolve_class
from pai_sweep.trial_files import EpochRecord, append_metrics, drop_resume_point, finite


class TrialFailure(PaiSweepError):
    """Raised when training itself goes wrong (NaN/inf loss or score); the message is the trial's reason."""


class StopRequested(PaiSweepError):
    """The launcher asked the worker to stop (the sweep's Ctrl-C): raised at the end of an epoch, after its resume
    point is saved, so the trial run again continues from there (docs/worker.md)."""


_STOP = {"requested": False}


def request_stop(*_: Any) -> None:
    """The worker's SIGUSR1 handler: finish this epoch, save its resume point, stop."""
    _STOP["requested"] = True


def setting(cfg: Any, key: str, default: Any = None) -> Any:
    """cfg[key] of a dict, a dataclass or a DictConfig (train_cfg in any form)."""
    if isinstance(cfg, dict):
        return cfg.get(key, default)
    return getattr(cfg, key, default)


def _plain(value: Any) -> Any:
    if hasattr(value, "_metadata"):
        from omegaconf import OmegaConf

        return OmegaConf.to_container(value, resolve=True)
    return value


class PAISession:
    """What a training function needs from PerforatedAI, and nothing else.

    Attributes: model (the current model: use the one report() returns), device, epoch (epochs
    reported so far), max_epochs, maximizing, enabled (dendrites on), records (EpochRecords).
    """

    def __init__(
        self,
        model: Any,
        *,
        train_cfg: Any,
        enabled: bool = True,
        maximizing: bool = True,
        patience: int = 10,
        device: Any = "cpu",
        trial_dir: str | Path | None = None,
        log: Callable[[str], None] = print,
        resume_file: str | Path | None = None,
        generators: tuple = (),
        resume_every_epoch: bool = True,
        branch_dir: str | Path | None = None,
        branch_info: dict | None = None,
        later_points: bool = False,
        point_signature: Callable[[int, int], str | None] | None = None,
    ):
        self.model = model
        self.device = device
        self.enabled = enabled
        self.maximizing = maximizing
        self.max_epochs = int(setting(train_cfg, "max_epochs", 60))
        self.epoch = 0
        self.records: list[EpochRecord] = []
        self.trial_dir = Path(trial_dir) if trial_dir is not None else None
        self.log = log
        self.end_reason = ""
        self._patience = int(patience)  # plain model: stop where PerforatedAI would add the first dendrite
        opt = setting(train_cfg, "optimizer")
        sched = setting(train_cfg, "scheduler")
        self._opt_cls = resolve_class(setting(opt, "type", "Adam"), "torch.optim", "train.optimizer.type")
        self._opt_args = dict(_plain(setting(opt, "args", {})) or {})
        sched_type = setting(sched, "type") if sched is not None else None
        self._sched_cls = resolve_class(sched_type, "torch.optim.lr_scheduler", "train.scheduler.type") if sched_type else None
        self._sched_args = dict(_plain(setting(sched, "args", {})) or {}) if sched_type else {}
        self._optimizer = None
        self.scheduler = None
        self._tick = self._returned = time.perf_counter()
        self.resume_file = Path(resume_file) if resume_file is not None else None
        self._generators = tuple(g for g in generators if g is not None)  # e.g. the train loader's shuffling
        # Points go to resume_file every epoch (train.resume), or only in the neuron phase while a branch point is
        # wanted: at the first switch the point of the epoch before it becomes the branch point (branching.py).
        self._resume_every_epoch = bool(resume_every_epoch)
        self.branch_dir = Path(branch_dir) if branch_dir is not None and enabled else None
        self._branch_info = dict(branch_info or {})
        self._branch_pending = self.branch_dir is not None and self.resume_file is not None
        # later points (branching.py): after each switch and at the epoch cap, in the trial folder, for trials that
        # differ only in what has not acted yet there; point_signature(dendrites, switches) is their branch.json signature
        self._later_points = bool(later_points) and enabled and self.resume_file is not None and self.trial_dir is not None
        self._point_signature = point_signature or (lambda dendrites, switches: None)
        self._point: tuple[int, Any] | None = None  # (epochs done, best_model.pt's stat) of the last point saved

    # -- the API a training function uses

    def optimizer(self):
        """The optimizer for the current model, built from the configured type and args (after every restructure)."""
        if self._optimizer is None:
            self._build_optimizer()
        return self._optimizer

    def report(self, val: float, train: float | None = None, test: float | None = None, loss: float | None = None):
        """End of one epoch: returns (model, restructured, complete). Stop when complete is True."""
        computed = time.perf_counter() - self._returned  # the training function's own time since report last returned
        for name, value in (("validation score", val), ("train score", train), ("test score", test), ("training loss", loss)):
            if value is not None and finite(value, loose=True) is None:
                raise TrialFailure(
                    f"{name} is {value} at epoch {self.epoch}: training diverged; lower train.optimizer.args.lr "
                    "or check the data for NaN"
                )
        restructured = complete = False
        if self.enabled and self._optimizer is None:
            # PerforatedAI steps the optimizer's scheduler inside add_validation_score: without one it fails deep inside
            raise TrialFailure("session.report() came before session.optimizer(): call opt = session.optimizer() before "
                               "the first epoch, and again after every restructure (docs/worker.md)")
        if self.enabled:
            from pai_sweep import perforate

            self.model, restructured, complete = perforate.add_scores(self.model, val, train, test)
            if restructured and self._branch_pending:
                self._end_neuron_phase()
            if complete:
                self.end_reason = "pai_complete"
            elif restructured:
                self._build_optimizer()  # the tracker cleared both: same type, same args
            params, dendrites = perforate.count_params(self.model), perforate.dendrite_count()
        else:
            self._step_plain_scheduler(val)
            params, dendrites = sum(p.numel() for p in self.model.parameters()), 0
            if self._plateaued(val):
                complete, self.end_reason = True, "no_improvement"
        now = time.perf_counter()
        record = EpochRecord(
            epoch=self.epoch, val=float(val), train=_opt_float(train), test=_opt_float(test), loss=_opt_float(loss),
            lr=self._lr(), params=params, dendrites=dendrites, restructured=restructured, seconds=round(now - self._tick, 4),
            compute_seconds=round(computed, 4),
        )
        self._tick = now
        self.records.append(record)
        self.epoch += 1
        if not complete and self.epoch >= self.max_epochs:
            complete, self.end_reason = True, "epoch_cap"
        stopping = _STOP["requested"] and not complete and self.resume_file is not None
        saved = not complete and self.resume_file is not None and (self._resume_every_epoch or self._branch_pending or stopping)
        if saved:
            self._save_resume_point()  # first: a metrics line on disk means its resume point is too
        later = self._later_point(restructured, complete, dendrites)
        if later:
            self._write_later_point(*later, dendrites, saved)
        if self.trial_dir is not None:
            append_metrics(self.trial_dir, record)
        if stopping:
            raise StopRequested(f"stopped when asked, after epoch {self.epoch - 1}: its resume point is saved")
        self._returned = time.perf_counter()
        return self.model, restructured, complete

    # -- resume after a kill (train.resume)

    def _save_resume_point(self) -> None:
        import random

        import numpy as np
        import torch

        state: dict[str, Any] = {"epoch": self.epoch, "tracker": None, "records": [dataclasses.asdict(r) for r in self.records]}
        if self.enabled:
            from pai_sweep import perforate

            state["tracker"] = perforate.save_resume_point(self.model, name=perforate.resume_name(self.epoch))
        else:
            state["model"] = self.model.state_dict()
        opt = self.optimizer()
        state["optimizer"] = opt.state_dict()
        state["scheduler"] = self.scheduler.state_dict() if self.scheduler is not None else None
        state["rng"] = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate(),
                        "generators": [g.get_state() for g in self._generators]}
        tmp = self.resume_file.with_name(f".{self.resume_file.name}.tmp")
        torch.save(state, tmp)
        tmp.replace(self.resume_file)  # atomic: a kill leaves the previous complete point
        self._point = (self.epoch, _stat(self._best_model_file()))

    def _best_model_file(self) -> Path:
        from pai_sweep import perforate

        return Path(perforate.SAVE_NAME) / "best_model.pt"  # the library's, in the working directory

    def _end_neuron_phase(self) -> None:
        """At the first switch: keep the branch point; then, unless train.resume keeps a point every epoch, drop the
        neuron phase's last point (a re-run continuing from it would meet the best model written since)."""
        self._branch_pending = False
        best = self._best_model_file()
        if self._point is None or self._point[0] != self.epoch:
            self.log(f"pai-sweep: no branch point: no saved state from just before the switch at epoch {self.epoch}")
        elif _stat(best) != self._point[1]:
            # the switch epoch itself wrote a new best model: the one the prefix ended with is gone
            self.log(f"pai-sweep: no branch point: the best model changed at the switch epoch {self.epoch}")
        else:
            self._write_branch_point(best)
        if not self._resume_every_epoch:
            drop_resume_point(self.resume_file.parent)
            self._point = None

    def _write_branch_point(self, best: Path) -> None:
        """The point saved after the previous epoch and the best model as it was then become trial_dir/branch/."""
        info = {**self._branch_info, "epoch": self.epoch, "dendrites": 0, "switches": 0, "kind": "before_switch",
                "signature": self._point_signature(0, 0)}
        if self._write_point(self.branch_dir, info, (best,)):
            self.log(f"pai-sweep: branch point saved: the state after epoch {self.epoch - 1}, before the first switch")

    def _later_point(self, restructured: Any, complete: bool, dendrites: int) -> tuple[str, int] | None:
        """The folder name of the later point this epoch ends at (after a switch, at the epoch cap) and the switches so
        far, else None."""
        from pai_sweep import branching

        if not self._later_points or not (restructured and not complete or complete and self.end_reason == "epoch_cap"):
            return None
        switches = sum(1 for r in self.records if r.restructured)
        if switches and not dendrites:
            return None  # a dendrite set dropped again: nothing a trial with more dendrites would share
        name = f"{branching.LATER_PREFIX}at-cap" if complete else f"{branching.LATER_PREFIX}after-switch-{switches}"
        # a resumed run passes it again: the same state
        return None if branching.branch_info(self.trial_dir / name) else (name, switches)

    def _write_later_point(self, name: str, switches: int, dendrites: int, saved: bool) -> None:
        """The resume point of this epoch (saved here unless `saved`), with what PerforatedAI reads back later and the
        copies of its CSVs it made at each switch so far (a trial from here writes only its own), becomes
        trial_dir/<name>/; then, unless train.resume keeps one every epoch, the resume point goes again."""
        from pai_sweep import perforate
        from pai_sweep.trial_files import RESUME_MODELS

        kept = perforate.read_back_files(Path(perforate.SAVE_NAME), exclude=RESUME_MODELS)
        # with no dendrite yet (the cap in the neuron phase) nothing after the first switch has acted
        info = {**self._branch_info, "epoch": self.epoch, "dendrites": int(dendrites), "switches": switches,
                "kind": "at_cap" if name.endswith("at-cap") else "after_switch",
                "signature": self._point_signature(int(dendrites), switches)}
        if self._write_point(self.trial_dir / name, info, kept, save=None if saved else self._save_resume_point):
            self.log(f"pai-sweep: start point {name} saved: the state after epoch {self.epoch - 1}, {dendrites} dendrite(s)")
        if not (self._resume_every_epoch or _STOP["requested"]):  # a stop continues from it
            drop_resume_point(self.resume_file.parent)
            self._point = None

    def _write_point(self, dest: Path, info: dict, checkpoints: tuple[Path, ...], save: Callable[[], Any] | None = None) -> bool:
        from pai_sweep import branching

        return branching.write_point(dest, self.resume_file, info, checkpoints, self.log, save=save)

    def restore(self) -> None:
        """Continue from this trial's resume point (its own, or one copied in from train.start_from): model, tracker,
        optimizer, scheduler, RNGs, metrics.jsonl."""
        import random

        import numpy as np
        import torch

        from pai_sweep.trial_files import METRICS

        state = torch.load(self.resume_file, weights_only=False)
        if self.enabled:
            from pai_sweep import perforate

            self.model = perforate.load_resume_point(self.model, state["tracker"])
        else:
            self.model.load_state_dict(state["model"])
        self._build_optimizer()
        self._optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None and state["scheduler"] is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        rng = state["rng"]
        torch.set_rng_state(rng["torch"])
        np.random.set_state(rng["numpy"])
        random.setstate(rng["python"])
        for gen, saved in zip(self._generators, rng["generators"]):
            gen.set_state(saved)
        self.epoch = int(state["epoch"])
        # epochs after the resume point are run again: metrics.jsonl holds the lines up to it
        self.records = [EpochRecord(**r) for r in state["records"]]
        if any(r.restructured for r in self.records):
            self._branch_pending = False  # past its first switch: the state before it is not ahead
        if self.trial_dir is not None:
            (self.trial_dir / METRICS).unlink(missing_ok=True)
            for rec in self.records:
                append_metrics(self.trial_dir, rec)
        self.log(f"pai-sweep: resumed after epoch {self.epoch - 1} from {self.resume_file.name}")

    # -- summaries

    def best(self) -> EpochRecord | None:
        """The record with the best validation score (the first one on ties)."""
        best = None
        for rec in self.records:
            if best is None or (rec.val > best.val if self.maximizing else rec.val < best.val):
                best = rec
        return best

    # -- internals

    def _build_optimizer(self) -> None:
        if self.enabled:
            from pai_sweep import perforate

            self._optimizer, self.scheduler = perforate.setup_optimizer(
                self.model, self._opt_cls, self._opt_args, self._sched_cls, self._sched_args
            )
        else:
            import copy

            self._optimizer = self._opt_cls(self.model.parameters(), **copy.deepcopy(self._opt_args))
            self.scheduler = self._sched_cls(self._optimizer, **copy.deepcopy(self._sched_args)) if self._sched_cls else None

    def _step_plain_scheduler(self, val: float) -> None:
        # With dendrites the tracker steps the scheduler; without, the loop does, the same way.
        import torch

        if self.scheduler is None:
            return
        if isinstance(self.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            self.scheduler.step(val)
        else:
            self.scheduler.step()

    def _plateaued(self, val: float) -> bool:
        best = self.best()
        if best is None:
            return False
        if (val > best.val) if self.maximizing else (val < best.val):
            return False
        since = self.epoch - best.epoch
        return since >= self._patience

    def _lr(self) -> float | None:
        opt = self._optimizer
        if opt is None:
            return None
        try:
            return float(opt.param_groups[0]["lr"])
        except (AttributeError, IndexError, KeyError, TypeError):
            return None


def _stat(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)
