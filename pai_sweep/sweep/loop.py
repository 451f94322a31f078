"""The ask-and-tell loop: keep `sweep.in_flight` trials running, tell each as soon as it ends.

The driver is the only writer of the study. A trial is: ask -> trials/<n>/run.yaml ->
launcher.submit -> poll (pruning from metrics.jsonl, timeout) -> result.json -> analysis ->
tell -> feedback (derived trials, rule-recommended trials). A slot is refilled the moment a
trial ends; nothing waits for a batch.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any, Callable

import optuna
from omegaconf import OmegaConf
from optuna.trial import TrialState

from pai_sweep.consumers import check_params
from pai_sweep.errors import SweepError, TooManyFailures, os_error_line
from pai_sweep.launchers.base import JobState, Launcher
from pai_sweep.objective import Baseline
from pai_sweep.progress import Progress
from pai_sweep.schema.run import run_dict
from pai_sweep.search_space import SearchSpace, apply_params, suggest
from pai_sweep.sweep import reserve, size_ladder
from pai_sweep.sweep.guidance import Guidance
from pai_sweep.sweep.prefix_reuse import PREFIX_OF
from pai_sweep.sweep.running import Outcome, Running, describe
from pai_sweep.sweep.shutdown import Shutdown, is_folder_error, start_failure
from pai_sweep.sweep.start_points import plan_start
from pai_sweep.sweep.study import (
    BASELINE, REQUEUED, RULE, SAMPLER, STALE_REASON, STOPPED_REASON, counts_toward_budget,
    is_real_failure, origin, report_epoch, set_baseline, set_user_attrs, study_store_refused, trial_by_number,
)
from pai_sweep.trial_files import (
    RUN_CONFIG, STATUS_FAILED, STATUS_PRUNED, TrialResult, atomic_write_text, iter_metrics, jsonable, read_result,
)
from pai_sweep.validate import validate_run

# The baseline is the original model: no dendrites and none of the downsizing fields (each applies on its own).
BASELINE_PARAMS = {
    "dendrites.enabled": False,
    "downsize.name": "none",
    "downsize.family": None,
    "downsize.width_mult": 1.0,
    "downsize.depth": None,
}


# evaluate(trial_dir, result, cfg, baseline, returncode, apply_penalties=...) -> Outcome (sweep/evaluate.py)
Evaluate = Callable[..., Outcome]


# what an unfinished trial was queued as goes with its re-run: a rule's parent and params, the size ladder, prefix reuse
RERUN_KEEPS = ("parent", "params", "design", PREFIX_OF)


class SweepLoop(Guidance, Shutdown):
    def __init__(self, cfg: Any, sweep_dir: Path, study: optuna.Study, space: SearchSpace, launcher: Launcher,
                 progress: Progress, evaluate: Evaluate, tracker: Any = None):
        self.cfg, self.sweep_dir, self.study, self.space = cfg, Path(sweep_dir), study, space
        self.launcher, self.progress, self.tracker = launcher, progress, tracker
        self.evaluate = evaluate  # a finished trial -> its Outcome: the driver gives sweep/evaluate.py's (analysis, objective)
        self.running: dict[int, Running] = {}
        self.pending_rules: list[tuple] = []  # (finding, parent number, parent params, history, context) not yet judged
        self.deferred: list[tuple[Running, TrialResult | None, int | None]] = []
        self.baseline: Baseline | None = None
        self.baseline_pending = False
        self.needs_baseline = bool(cfg.objective.baseline)
        self.pruning = cfg.sweep.pruner != "none"
        self.timeout = cfg.sweep.trial_timeout
        self.poll_interval = float(cfg.launcher.poll_interval)
        # The first write the sweep folder refused (disk full, read-only): the step that met it finishes (its trial
        # is told), then the sweep stops with it; trials in flight are stopped and queued again, none left RUNNING.
        self.refused: OSError | None = None
        self.branch_points: dict[str, dict] = {}  # start point folder -> its branch.json, read once (sweep/start_points.py)
        self.last_refusal: tuple[BaseException, str] | None = None  # the last submission the launcher refused, and why

    # ---------------------------------------------------------------- counts
    def _trials(self) -> list[optuna.trial.FrozenTrial]:
        return self.study.get_trials(deepcopy=False)

    def budget_left(self) -> int:
        done = sum(1 for t in self._trials() if counts_toward_budget(t))
        waiting = [*self.running.values(), *(item[0] for item in self.deferred)]  # deferred: ended, not yet told
        running = sum(1 for r in waiting if r.origin == SAMPLER or r.origin.startswith(RULE))
        return int(self.cfg.sweep.n_trials) - done - running

    def counts(self) -> str:
        trials = self._trials()
        done = sum(1 for t in trials if counts_toward_budget(t))
        failed = sum(1 for t in trials if is_real_failure(t))
        return self.progress.counts(done, len(self.running), failed, self._best())

    def _best(self) -> str | None:
        try:
            best = self.study.best_trials if len(self.study.directions) > 1 else [self.study.best_trial]
        except ValueError:
            return None
        if not best:
            return None
        t = max(best, key=lambda t: t.values[0]) if self.study.directions[0].name == "MAXIMIZE" else min(best, key=lambda t: t.values[0])
        vals = ", ".join(f"{v:.4g}" for v in t.values)
        return f"#{t.number} ({origin(t)}) {vals}"

    # ---------------------------------------------------------------- start-up
    def prepare(self) -> None:
        """Baseline first; trials a dead driver left running: tell the finished, re-run the rest."""
        trials = self._trials()
        for t in trials:
            if origin(t) == BASELINE and t.state == TrialState.COMPLETE:
                self.baseline = Baseline(float(t.user_attrs["score"]), t.user_attrs.get("chosen_params") or t.user_attrs.get("n_params"))
        for t in trials:
            if t.state != TrialState.RUNNING:
                continue
            trial_dir = Path(t.user_attrs.get("trial_dir") or self.sweep_dir / "trials" / str(t.number))
            handle = trial_by_number(self.study, t.number)
            params = self.space.decode(t.params)
            if read_result(trial_dir) is not None:
                self.running[t.number] = Running(handle, origin(t), params, trial_dir, None)
                continue
            job = self.launcher.reattach(t.number, trial_dir)
            if job is not None and getattr(self.launcher, "follows_reattached", False):
                # A scheduler's job (SLURM) outlives the driver: follow it instead of running the trial again.
                self.running[t.number] = Running(handle, origin(t), params, trial_dir, job)
                continue
            if job is not None:
                self.launcher.cancel(job, STALE_REASON)
            self._restart(handle, origin(t), t.params, trial_dir, STALE_REASON)  # a stale baseline is queued again too
        if self.needs_baseline and not any(origin(t) == BASELINE for t in trials):
            # The plain model (dendrites off) is the reference of every later trial; it runs once per sweep.
            self.study.enqueue_trial({}, user_attrs={"origin": BASELINE})
        if not trials:
            rungs = size_ladder.enqueue(self.study, self.space, self.cfg)
            if rungs:
                self.progress.note(size_ladder.describe(rungs))
        waiting = self.study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
        self.baseline_pending = self.baseline is None and (any(origin(t) == BASELINE for t in waiting)
                                                           or any(r.origin == BASELINE and r.job for r in self.running.values()))

    def _restart(self, handle: optuna.trial.Trial, trial_origin: str, stored_params: dict, trial_dir: Path, reason: str) -> None:
        """Mark a trial the driver could not finish, and queue the same params to run again."""
        if trial_dir.exists() and read_result(trial_dir) is None:
            self._write_result(trial_dir, TrialResult(status=STATUS_FAILED, reason=reason))
        handle.set_user_attr("status", "failed")
        handle.set_user_attr("reason", reason)
        handle.set_user_attr(REQUEUED, True)  # before the tell: a finished trial takes no attrs
        self.study.tell(handle, state=TrialState.FAIL)
        self._queue_again(handle, trial_origin, stored_params)
        self.progress.note(f"trial {handle.number} {reason}: marked failed, its params queued to run again")

    def _queue_again(self, handle: optuna.trial.Trial, trial_origin: str, stored_params: dict) -> None:
        """The same params as a new trial that keeps what the old one was queued as (RERUN_KEEPS) and names it."""
        kept = {k: v for k, v in handle.user_attrs.items() if k in RERUN_KEEPS}
        self.study.enqueue_trial(dict(stored_params), user_attrs={**kept, "origin": trial_origin, "rerun_of": handle.number})

    # ---------------------------------------------------------------- main loop
    def run(self) -> None:
        reserve.hold(self.sweep_dir)  # room for the study to record the trials if the disk fills (_stop_refused)
        try:
            self._run()
        finally:
            reserve.release(self.sweep_dir)

    def _run(self) -> None:
        self.prepare()
        try:
            while True:
                changed = self._poll_all()
                refilled = self._refill()  # True also when every trial it made ready failed to start: refill again
                changed = refilled or changed
                self._stop_if_refused()
                if not self.running and self.deferred:
                    self._flush_deferred()  # the baseline will not run (budget spent): score without it
                if not self.running and not self.deferred and not refilled:
                    break
                if not changed:
                    self.launcher.wait(self.poll_interval)  # returns the moment a local worker ends
        except BaseException as exc:
            refused = self._refuse(self.refused or study_store_refused(exc, self.cfg, self.sweep_dir))
            self.stop()
            if refused is not None and refused is not exc:
                raise refused from exc
            raise

    def _refill(self) -> bool:
        launched, ready = False, []
        while len(self.running) < self.launcher.capacity and self.budget_left() > 0 and self.refused is None:
            self._check_failures()
            if self._waits_for_prefix():
                break
            ready.append(self._launch())
            launched = True
        self._submit([run for run in ready if run is not None])
        return launched

    def _check_failures(self) -> None:
        """Stop the sweep the moment sweep.max_failures trials have failed (the others in flight are stopped)."""
        failures = [t for t in self._trials() if is_real_failure(t)]
        if len(failures) >= self.cfg.sweep.max_failures:
            last = failures[-1]
            raise TooManyFailures(
                f"sweep stopped: {len(failures)} trials failed (sweep.max_failures={self.cfg.sweep.max_failures}); "
                f"last: trial {last.number}: {last.user_attrs.get('reason', '?')}. Fix the cause "
                f"(see {self.sweep_dir}/trials/{last.number}/worker.log) or raise sweep.max_failures, then run the same command to resume"
            )

    def _launch(self) -> Running | None:
        """Ask for a trial and write its folder; it holds a slot until _submit starts it (None: it failed)."""
        self._reuse_prefix()
        trial = self.study.ask()
        trial_origin = str(trial.user_attrs.get("origin", SAMPLER))
        trial_dir = self.sweep_dir / "trials" / str(trial.number)
        trial.set_user_attr("origin", trial_origin)
        trial.set_user_attr("trial_dir", str(trial_dir))
        params: dict[str, Any] = {}
        try:
            if trial_origin == BASELINE:
                # the original model: no dendrites and no downsizing (the reference the smaller models must match)
                run_cfg = apply_params(self.cfg, BASELINE_PARAMS)
            else:
                params = suggest(trial, self.space)
                run_cfg = apply_params(self.cfg, params)
            trial.set_user_attr("params", jsonable(params))
            trial.set_user_attr("status", "running")
            validate_run(run_cfg)
            check_params(run_cfg, params)  # every searched value must act on the trial (consumers.py)
            run_yaml = OmegaConf.create(run_dict(run_cfg))  # the run spec: improvement_threshold as its list
            rerun_of = trial.user_attrs.get("rerun_of")  # run again after an interruption: continue that attempt
            earlier = self.sweep_dir / "trials" / str(rerun_of) if rerun_of is not None else None
            for key, value in plan_start(self.cfg, self.sweep_dir, run_yaml, trial_origin == BASELINE, earlier, self.branch_points).items():
                trial.set_user_attr(key, value)
            try:
                trial_dir.mkdir(parents=True, exist_ok=True)
                atomic_write_text(trial_dir / RUN_CONFIG, OmegaConf.to_yaml(run_yaml))
            except OSError as exc:  # the sweep folder refuses writes: no trial can start, the sweep stops
                self._refuse(exc)
                self._restart(trial, trial_origin, trial.params, trial_dir, STOPPED_REASON)
                return None
        except Exception as exc:  # noqa: BLE001 - a trial that cannot start fails alone
            self._tell(Running(trial, trial_origin, params, trial_dir, None), Outcome(TrialState.FAIL, start_failure(exc)))
            return None
        run = Running(trial, trial_origin, params, trial_dir, None)
        self.running[trial.number] = run
        return run

    def _submit(self, ready: list[Running]) -> None:
        """Start the trials made ready in one refill together (launcher=slurm use_array: one job array)."""
        jobs = self.launcher.submit_many([(run.number, run.trial_dir) for run in ready]) if ready else []
        repeated: SweepError | None = None  # raised once every job of the batch is recorded: none runs untracked
        for run, job in zip(ready, jobs):
            if isinstance(job, BaseException):
                self.running.pop(run.number, None)
                if isinstance(job, OSError) and is_folder_error(job, self.sweep_dir):  # launch.json, worker.log refused
                    self._refuse(job)
                    self._restart(run.trial, run.origin, run.trial.params, run.trial_dir, STOPPED_REASON)
                    continue
                self._tell(run, Outcome(TrialState.FAIL, start_failure(job)))
                repeated = repeated or self._refused_again(job)
                continue
            self.last_refusal = None
            run.job, run.started = job, time.monotonic()
            if run.origin == BASELINE:
                self.baseline_pending = True
            self.progress.started(run.number, run.origin, str(job.info.get("device", "?")), run.params if run.origin != BASELINE else BASELINE_PARAMS)
        if repeated is not None:
            raise repeated

    def _poll_all(self) -> bool:
        changed = False
        for run in list(self.running.values()):
            if run.job is None:
                self._finish(run, read_result(run.trial_dir), None)
                changed = True
                continue
            state = self.launcher.poll(run.job)
            if state in (JobState.RUNNING, JobState.PENDING):
                changed = self._watch(run) or changed
                continue
            result = read_result(run.trial_dir)
            if result is None and run.job.reason:
                result = TrialResult(status=STATUS_FAILED, reason=run.job.reason)
                self._write_result(run.trial_dir, result)
            self._finish(run, result, run.job.info.get("returncode"))
            changed = True
            self._stop_if_refused()  # the folder's error is the reason to stop, not the failures it caused
            self._check_failures()  # one at a time: trials that ended in the same poll are not counted past the limit
        return changed

    def _watch(self, run: Running) -> bool:
        """Per-epoch scores to Optuna, pruning and timeout checks for a running trial; True when it was stopped."""
        new_epoch = self._report_epochs(run)
        if self.pruning and new_epoch is not None and run.origin != BASELINE and run.trial.should_prune():
            self._stop_job(run, STATUS_PRUNED, f"pruned at epoch {new_epoch}: below the median of earlier trials")
            return True
        if self.timeout and time.monotonic() - run.started > float(self.timeout):
            self._stop_job(run, STATUS_FAILED, f"timed out after {float(self.timeout):g} s")
            return True
        return False

    def _report_epochs(self, run: Running) -> int | None:
        """Each new metrics.jsonl epoch as an intermediate value (optuna-dashboard, pruners); the last new epoch or None."""
        records = list(iter_metrics(run.trial_dir))
        for rec in records[run.reported:]:
            if rec.val is not None and math.isfinite(rec.val):
                report_epoch(self.study, run.trial, float(rec.val), int(rec.epoch))
        if len(records) <= run.reported:
            return None
        run.reported = len(records)
        return records[-1].epoch

    def _stop_job(self, run: Running, status: str, reason: str) -> None:
        self.launcher.cancel(run.job, reason)
        result = read_result(run.trial_dir)
        if result is None or result.status != status:
            # The worker's partial outputs stay; result.json records why the driver stopped it.
            result = TrialResult(status=status, reason=reason, epochs=run.reported)
            self._write_result(run.trial_dir, result)
        self._finish(run, result, None)

    # ---------------------------------------------------------------- finishing
    def _finish(self, run: Running, result: TrialResult | None, returncode: int | None) -> None:
        self.running.pop(run.number, None)
        if self.baseline_pending and run.origin != BASELINE and self.cfg.objective.name != "accuracy":
            self.deferred.append((run, result, returncode))  # its constraint needs the baseline's score
            self.progress.note(f"trial {run.number} ended; waits for the baseline before it is scored")
            return
        is_baseline = run.origin == BASELINE
        outcome = self.evaluate(run.trial_dir, result, self.cfg, self.baseline, returncode, apply_penalties=not is_baseline)
        self._refuse(outcome.unwritten)
        refused = None
        if result is None and run.trial_dir.is_dir():
            # the folder says why too; when it cannot, that is most likely what the worker died of
            refused = self._write_result(run.trial_dir, TrialResult(status=STATUS_FAILED, reason=outcome.reason))
            if refused is not None:
                outcome.reason = f"its folder cannot be written: {os_error_line(refused, fix=False)} ({outcome.reason})"
                outcome.attrs[REQUEUED] = True  # the disk's fault, not the trial's: it runs again and counts once
        try:
            self._tell(run, outcome)
        except Exception:
            self.running[run.number] = run  # not told: stop() (or the next start) tells it
            raise
        if refused is not None:
            self._queue_again(run.trial, run.origin, run.trial.params)
        if is_baseline:
            if outcome.state == TrialState.COMPLETE:
                score = outcome.attrs["score"]
                self.baseline = Baseline(float(score), outcome.attrs.get("chosen_params") or (result.params if result else None))
                self.progress.note(f"baseline (no dendrites): score {score:.4g}, {self.baseline.params} params")
                set_baseline(self.study, run.number, float(score), self.baseline.params)
            self._flush_deferred()

    def _flush_deferred(self) -> None:
        self.baseline_pending = False
        pending, self.deferred = self.deferred, []
        for item in pending:
            self._finish(*item)

    def _tell(self, run: Running, outcome: Outcome) -> None:
        trial = run.trial
        try:
            self._report_epochs(run)  # epochs written after the last poll
        except Exception:  # noqa: BLE001 - intermediate values are for reading, never a reason to lose the trial
            pass
        set_user_attrs(self.study, trial, describe(outcome))  # one commit, not one per attr
        if outcome.state == TrialState.COMPLETE:
            for name, value in outcome.constraints.items():
                trial.set_constraint(name, float(value))
            self.study.tell(trial, outcome.values)
        else:
            self.study.tell(trial, state=outcome.state)
        frozen = self.study.trials[trial.number]
        self._report(run, outcome)
        self._track(frozen, run.trial_dir)
        if outcome.state == TrialState.COMPLETE and run.origin != BASELINE:
            self._feedback(run, outcome, frozen)

    def _report(self, run: Running, outcome: Outcome) -> None:
        if outcome.state == TrialState.COMPLETE:
            a = outcome.attrs
            detail = f"{a.get('score', float('nan')):.4g} at {a.get('chosen_dendrites')} dendrite(s), {a.get('chosen_params')} params"
            if a.get("no_dendrite_score") is not None:
                detail += f" (without dendrites {a['no_dendrite_score']:.4g})"
            if a.get("findings"):
                detail += f"; findings: {', '.join(a['findings'])}"
            state = "complete"
        else:
            detail, state = outcome.reason, outcome.state.name.lower()
        self.progress.finished(run.number, state, detail, self.counts())

    def _track(self, frozen: optuna.trial.FrozenTrial, trial_dir: Path | None) -> None:
        if self.tracker is None:
            return
        try:
            self.tracker.log_trial(frozen, trial_dir)
        except Exception as exc:  # noqa: BLE001 - tracking never stops a sweep
            self.progress.note(f"tracking: could not log trial {frozen.number}: {exc}")
