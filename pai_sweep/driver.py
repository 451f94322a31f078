"""Run (or resume) a sweep from a composed config: the one entry point the CLI calls.

Everything that can be checked is checked before a folder is made or a trial runs: the search
space, the objective's direction, the pruner, and (on resume) that the folder's config fits.
"""

from __future__ import annotations

import shutil
import signal
import threading
from pathlib import Path
from typing import Any, TextIO

from omegaconf import OmegaConf

from pai_sweep.consumers import check_space
from pai_sweep.data.checks import check_available
from pai_sweep.errors import CheckFailed, ConfigError, SweepError, TrackingError, os_error_line
from pai_sweep.launchers import make_launcher
from pai_sweep.launchers.base import Launcher
from pai_sweep.objective import directions
from pai_sweep.progress import Progress
from pai_sweep.report import write_sweep_report
from pai_sweep.search_space import parse_space
from pai_sweep.sweep.evaluate import evaluate
from pai_sweep.sweep.loop import SweepLoop
from pai_sweep.sweep.study import check_and_save_config, make_pruner, make_sampler, open_study, storage_url
from pai_sweep.sweep.summary import build_summary, write_summary
from pai_sweep.task import objective_label
from pai_sweep.tracking import Tracker, make_tracker

__all__ = ["run_sweep"]


def _tracker(cfg: Any, sweep_dir: Path, progress: Progress) -> Tracker:
    try:
        return make_tracker(cfg.tracking, experiment=cfg.tracking.experiment or cfg.sweep.name, sweep_dir=sweep_dir)
    except TrackingError:
        raise  # a malformed URI is a config mistake: say so before anything runs
    except Exception as exc:  # noqa: BLE001 - tracking never stops a sweep
        progress.note(f"tracking off for this sweep: {exc}")
        return Tracker()  # the base records nothing


def _guarded(progress: Progress, what: str, fn, *args) -> Any:
    try:
        return fn(*args)
    except Exception as exc:  # noqa: BLE001 - tracking and reports never stop a sweep
        progress.note(f"{what} failed: {type(exc).__name__}: {exc}")
        return None


def check_penalties(objective_cfg: Any) -> None:
    """objective.penalties must name rules the analysis has (a typo would silently charge nothing)."""
    try:
        from pai_sweep.analysis.rules import all_rules
    except ImportError:
        return
    known = sorted({rid for r in all_rules() for rid in r.rule_ids})
    unknown = sorted(set(objective_cfg.penalties or {}) - set(known))
    if unknown:
        raise ConfigError(f"objective.penalties names unknown rule id(s) {', '.join(unknown)}; valid ids: {', '.join(known)}")


def _check_integration(cfg: Any, sweep_dir: Path, progress: Progress) -> None:
    """`pai-sweep check` once per sweep folder: a model PerforatedAI cannot take fails here, not in every trial."""
    from pai_sweep.check.verdict import run_check

    progress.note("checking the integration once (sweep.check_first): static checks and the capacity test")
    result = run_check(cfg, sweep_dir / "check")
    if not result.ok:
        (sweep_dir / "check" / "check.json").unlink(missing_ok=True)  # check again on the next start
        problems = "; ".join(result.problems) or " ".join(result.verdict.split())
        raise CheckFailed(
            f"pai-sweep check found {len(result.problems) or 'a'} problem(s): {problems} "
            f"(full verdict: pai-sweep check with the same overrides; skip it with sweep.check_first=false)"
        )
    progress.note(f"check passed: {result.verdict.splitlines()[0] if result.verdict else 'ok'}")


def run_sweep(cfg: Any, launcher: Launcher | None = None, stream: TextIO | None = None) -> dict[str, Any]:
    """Run the sweep `cfg` describes until sweep.n_trials trials ran; returns summary.json's content."""
    # The launcher first: a local pool boots its warm worker server now, so the server's imports (torch,
    # perforatedai) run while the config is checked, the study opened and the check runs; a SLURM launcher
    # refuses a bad partition at once.
    created = not Path(cfg.sweep.dir).exists()  # a folder this run makes is this run's to remove
    launcher = launcher or make_launcher(cfg.launcher, Path(cfg.sweep.dir), int(cfg.sweep.in_flight))
    remove = False
    try:
        return _run_sweep(cfg, launcher, stream)
    except CheckFailed as exc:
        # nothing ran: leave no half-made sweep folder behind (the next start would resume it as if it had), unless
        # the verdict names a file in it (the capacity test's worker.log) that the user needs to read
        remove = created and str(Path(cfg.sweep.dir).resolve()) not in str(exc)
        raise
    finally:
        launcher.close()
        if remove:
            shutil.rmtree(cfg.sweep.dir, ignore_errors=True)


def _run_sweep(cfg: Any, launcher: Launcher, stream: TextIO | None) -> dict[str, Any]:
    space = parse_space(cfg.sweep.space, cfg)
    check_space(space, cfg)  # a searched key the chosen options ignore would record values no trial used
    dirs = directions(cfg.objective, cfg.dendrites.maximizing_score)
    make_pruner(cfg.sweep, len(dirs))  # these fail now, not after the folder exists
    make_sampler(cfg.sweep, space, int(cfg.sweep.seed))
    check_penalties(cfg.objective)
    check_available(cfg.data)  # a missing data folder is one line now, not a failed check or trial later
    sweep_dir = Path(cfg.sweep.dir)
    progress = Progress(stream, total=int(cfg.sweep.n_trials))
    tracker = _tracker(cfg, sweep_dir, progress)
    resuming = check_and_save_config(cfg, sweep_dir)
    if cfg.sweep.check_first and not (sweep_dir / "check" / "check.json").exists():
        _check_integration(cfg, sweep_dir, progress)
    study = open_study(cfg, sweep_dir, space, dirs)
    stored = len(study.trials)
    progress.note(
        f"sweep '{cfg.sweep.name}' in {sweep_dir} ({f'resuming: {stored} trials stored' if resuming else 'new'}); "
        f"{cfg.sweep.n_trials} trials, {cfg.sweep.in_flight} at a time, optimising {objective_label(cfg, dirs)}"
    )
    _guarded(progress, "tracking", tracker.start_sweep, OmegaConf.to_container(cfg, resolve=True))
    loop = SweepLoop(cfg, sweep_dir, study, space, launcher, progress, evaluate, tracker)
    stopped = None
    previous = _sigterm_as_interrupt()
    try:
        loop.run()
    except SweepError as exc:
        stopped = str(exc)
        raise
    except KeyboardInterrupt:
        stopped = "interrupted"
        raise
    except OSError as exc:  # the sweep folder refused a write (disk full, read-only): the CLI's one line
        stopped = os_error_line(exc)
        raise
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        launcher.close()
        summary = build_summary(cfg, study, sweep_dir, stopped)
        try:
            write_summary(summary, sweep_dir, progress)
        except OSError as exc:
            if stopped is None:
                raise
            progress.note(f"summary.json not written: {os_error_line(exc, fix=False)}")  # the reason it stopped stands
        report_dir = _guarded(progress, "report", write_sweep_report, sweep_dir)
        _guarded(progress, "tracking", tracker.finish_sweep, summary, report_dir)
        _closing_lines(progress, cfg, sweep_dir, report_dir, tracker)
    return summary


def _closing_lines(progress: Progress, cfg: Any, sweep_dir: Path, report_dir: Path | None, tracker: Tracker) -> None:
    """The sweep's last lines: where the report is and the commands that open the runs and the study."""
    if report_dir is not None:
        progress.note(f"report: {Path(report_dir).resolve() / 'report.html'}")
    if getattr(tracker, "enabled", False) and hasattr(tracker, "open_command"):  # a hook object (docs/sweeps.md) may have neither
        command = _guarded(progress, "tracking", tracker.open_command)
        if command:
            progress.note(f"runs: {command}")
    progress.note(f"study: optuna-dashboard {storage_url(cfg, sweep_dir)}")


def exit_status(summary: dict[str, Any]) -> tuple[int, str | None]:
    """(exit code, one-line reason): 0 when at least one trial completed, 1 when the sweep ended without any
    (every trial failed or was pruned). Stopping on sweep.max_failures raises TooManyFailures instead (exit 3)."""
    states = summary.get("states") or {}
    if states.get("complete", 0):
        return 0, None
    ended = [r for r in summary.get("trials", []) if r.get("state") in ("fail", "pruned")]
    counts = ", ".join(f"{n} {s}" for s, n in sorted(states.items()) if n) or "no trial ran"
    text = f"sweep {summary.get('name')} ended with no completed trial ({counts})"
    if ended:
        last = ended[-1]
        text += f"; last: trial {last['trial']}: {last.get('reason') or last['state']}"
        if last.get("trial_dir"):
            text += f" (see {last['trial_dir']}/worker.log)"
    return 1, " ".join(text.split())


def _sigterm_as_interrupt():
    # SIGTERM (a scheduler or `kill`) stops the sweep like Ctrl-C: running trials are marked and re-queued.
    if threading.current_thread() is not threading.main_thread():
        return None

    def handler(signum, frame):
        raise KeyboardInterrupt

    return signal.signal(signal.SIGTERM, handler)
