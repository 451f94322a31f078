"""How the loop stops: Ctrl-C and SIGTERM (each running trial keeps its epoch, then is marked and queued
again), a sweep folder that refuses writes (disk full, read-only: nothing left RUNNING), and a submission
error that repeats. A mixin of SweepLoop (sweep/loop.py), whose state it uses.
"""

from __future__ import annotations

import re
from pathlib import Path

import optuna
from optuna.trial import TrialState

from pai_sweep.errors import PaiSweepError, SweepError
from pai_sweep.sweep import reserve
from pai_sweep.sweep.running import Running
from pai_sweep.sweep.study import STOPPED_REASON, origin, trial_by_number
from pai_sweep.trial_files import TrialResult, clean_partial, read_result, write_result


def is_folder_error(exc: OSError, sweep_dir: Path) -> bool:
    """The OSError is about a file in the sweep folder (not, say, a missing sbatch)."""
    if exc.filename is None:
        return False
    try:
        return Path(exc.filename).resolve().is_relative_to(Path(sweep_dir).resolve())
    except (OSError, ValueError):
        return False


def start_failure(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, PaiSweepError) else f"could not start: {type(exc).__name__}: {exc}"


class Shutdown:
    """Stopping: a repeated submission error, a refused write, Ctrl-C and SIGTERM (SweepLoop's state)."""

    def _refused_again(self, exc: BaseException) -> SweepError | None:
        """The same submission error from two submissions in a row (sbatch refusing the resources, a missing
        executable) would fail every trial left: the error that stops the sweep (one job array is one submission)."""
        reason = start_failure(exc)
        # the launcher names the trials it submitted ("submitting trial 3 failed: ..."): the error is the rest
        same = re.sub(r"\btrials? [\d, ]+", "trial N ", reason)
        last, self.last_refusal = self.last_refusal, (exc, same)
        if last is not None and last[0] is not exc and last[1] == same:
            return SweepError(f"sweep stopped: two submissions in a row failed with the same error, every trial would: {reason}. "
                              "Fix it (see above; pai-sweep check names the cause of most), then run the same command to resume")
        return None

    def _write_result(self, trial_dir: Path, result: TrialResult) -> OSError | None:
        """result.json from the driver; a folder that refuses it is kept in self.refused (the sweep stops after this step)."""
        try:
            write_result(trial_dir, result)
        except OSError as exc:
            self._refuse(exc)
            return exc
        return None

    def _refuse(self, exc: OSError | None) -> OSError | None:
        """Keep the first refused write; give back the reserve at once, so the study can record this step."""
        if exc is not None and self.refused is None:
            self.refused = exc
            reserve.release(self.sweep_dir)
        return self.refused

    def _stop_if_refused(self) -> None:
        if self.refused is not None:
            raise self.refused

    def _stop_refused(self) -> None:
        """The sweep folder refuses writes (disk full, read-only): stop every worker first and free the partial
        outputs of those that had not ended (their params run again, from the start, on resume), so the study has
        room to record each trial; then score the ended ones and mark the stopped ones. None is left RUNNING."""
        ended, stopped = [], []
        for run in list(self.running.values()):
            result = read_result(run.trial_dir)
            if result is not None:
                ended.append((run, result))
                continue
            stopped.append(run)
            self._cancel(run)
            try:
                clean_partial(run.trial_dir)  # pai/, metrics.jsonl and a resume point the re-run could not use
            except OSError:
                pass
        for run, result in ended:
            try:
                self._finish(run, result, run.job.info.get("returncode") if run.job is not None else None)
            except Exception:  # noqa: BLE001 - the study cannot take it either: the next start scores it
                self.progress.note(f"trial {run.number} has ended but is not scored yet: the next start scores it")
        self.running.clear()
        handles = [(run.trial, run.origin, run.trial.params, run.trial_dir) for run in stopped]
        # and one the refusal met between ask and its folder (this driver is the study's only writer: prepare())
        told = {run.number for run in stopped} | {run.number for run, _ in ended}
        try:
            handles += [(trial_by_number(self.study, t.number), origin(t), t.params, self.sweep_dir / "trials" / str(t.number))
                        for t in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)) if t.number not in told]
        except Exception:  # noqa: BLE001 - the study cannot be read: the next start marks them as stale
            pass
        for handle in handles:
            self._requeue(*handle)
        self._flush_at_stop()

    def _cancel(self, run: Running) -> None:
        if run.job is not None:
            try:
                self.launcher.cancel(run.job, STOPPED_REASON)
            except Exception:  # noqa: BLE001 - keep stopping the others
                pass

    def _requeue(self, handle: optuna.trial.Trial, trial_origin: str, params: dict, trial_dir: Path) -> None:
        try:
            self._restart(handle, trial_origin, params, trial_dir, STOPPED_REASON)
        except Exception:  # noqa: BLE001 - the next start marks it as stale instead
            pass

    def _flush_at_stop(self) -> None:
        try:
            self._flush_deferred()
        except Exception:  # noqa: BLE001 - they have result.json: the next start tells them
            pass

    def stop(self) -> None:
        """Cancel what runs (Ctrl-C, too many failures); each is marked and queued to run again on resume."""
        if self.refused is not None:
            self._stop_refused()
            return
        live = [r.job for r in self.running.values() if r.job is not None and read_result(r.trial_dir) is None]
        if live:
            self.progress.note(f"stopping: {len(live)} running trial(s) finish their epoch and keep it (Ctrl-C again: stop now)")
        try:  # each running trial finishes its epoch and keeps its resume point: the run again continues from it
            self.launcher.stop_gracefully(live)
        except BaseException:  # noqa: BLE001 - a second Ctrl-C skips the wait; they are cancelled below either way
            pass
        for run in list(self.running.values()):
            self.running.pop(run.number, None)
            if read_result(run.trial_dir) is not None and run.job is not None:
                self.progress.note(f"trial {run.number} has ended but is not scored yet: the next start scores it")
                continue  # its result.json stands; prepare() tells it on resume
            self._cancel(run)
            self._requeue(run.trial, run.origin, run.trial.params, run.trial_dir)
        self._flush_at_stop()
