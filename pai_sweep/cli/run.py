"""`pai-sweep run [OVERRIDES] [--dir DIR]`: train exactly one trial in its own process and print the result.

The process is a fresh one, or, when `launcher.keep_warm` keeps a warm server (at a terminal by default) and the
trial trains on the CPU, a fork of that server (launchers/warm_server.py): the same fresh library state without the imports.

Torch is never imported here: the worker process does the work, this one composes, watches
metrics.jsonl and prints one line per epoch.
"""

from __future__ import annotations

import time
from pathlib import Path

POLL_SECONDS = 0.25
KILL_GRACE_S = 10.0  # seconds between SIGTERM and SIGKILL when --timeout or Ctrl-C stops the worker


def run_command_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "run",
        help="train exactly one perforated trial and print its result",
        description=(
            "Train one trial with the usual Hydra overrides (e.g. model=mlp dendrites=linear_only "
            "train.max_epochs=20). Exit 0 when it completes, 1 when it fails (the reason is printed)."
        ),
    )
    p.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. model=mlp dendrites.max_dendrites=2")
    p.add_argument("--dir", default=None, help="trial folder (default: ./runs/<timestamp>)")
    p.add_argument("--timeout", type=float, default=None, help="kill the trial after this many seconds")
    p.set_defaults(func=run_command)


def _trial_dir(given: str | None) -> Path:
    if given:
        return Path(given).resolve()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = Path("runs") / stamp
    n = 1
    while path.exists():  # two runs in the same second
        n += 1
        path = Path("runs") / f"{stamp}-{n}"
    return path.resolve()


def _epoch_line(rec) -> str:
    parts = [f"epoch {rec.epoch:>3}", f"val {rec.val:.4g}"]
    if rec.test is not None:
        parts.append(f"test {rec.test:.4g}")
    parts += [f"dendrites {rec.dendrites}", f"params {rec.params:,}" if rec.params is not None else "params -"]
    if rec.restructured:
        parts.append("restructured")
    parts.append(f"{rec.seconds:.2f}s")
    return "  ".join(parts)


def run_command(args) -> int:
    from pai_sweep.compose import compose
    from pai_sweep.data.checks import check_available
    from pai_sweep.errors import ConfigError
    from pai_sweep.launchers.processes import WorkerRun, no_result
    from pai_sweep.preflight import write_run_config
    from pai_sweep.schema.knobs import check_knobs
    from pai_sweep.trial_files import RESULT, STATUS_FAILED, WORKER_LOG, TrialResult, iter_metrics, write_result

    cfg = compose(args.overrides)
    check_knobs(cfg.dendrites)
    check_available(cfg.data)  # before a folder is made or a worker starts
    trial_dir = _trial_dir(args.dir)
    if (trial_dir / RESULT).exists():
        raise ConfigError(f"{trial_dir} already holds a finished trial ({RESULT}): choose another --dir or remove it")
    write_run_config(cfg, trial_dir)
    print(f"pai-sweep run: {trial_dir}  (log: {trial_dir / WORKER_LOG})", flush=True)
    worker = WorkerRun.start(trial_dir, _kept_spawn(cfg))
    start, shown = time.monotonic(), 0
    code: int | None = None
    try:
        while code is None:
            code = worker.poll()
            records = list(iter_metrics(trial_dir))
            for rec in records[shown:]:
                print(_epoch_line(rec), flush=True)
            shown = len(records)
            if code is None and args.timeout and time.monotonic() - start > args.timeout:
                worker.stop(grace=KILL_GRACE_S, kill_wait=None)
                write_result(trial_dir, TrialResult(status=STATUS_FAILED, reason=f"timed out after {args.timeout:g} s (--timeout)"))
                break
            if code is None:
                time.sleep(POLL_SECONDS)
    except KeyboardInterrupt:
        worker.stop(grace=KILL_GRACE_S, kill_wait=None)
        write_result(trial_dir, TrialResult(status=STATUS_FAILED, reason="interrupted (Ctrl-C)"))
        raise
    for rec in list(iter_metrics(trial_dir))[shown:]:
        print(_epoch_line(rec), flush=True)
    result = worker.result()
    if result is None:
        # result.json is the only proof of success: PerforatedAI can exit 0 on failure.
        result = TrialResult(status=STATUS_FAILED, reason=f"{no_result(code)}; see {trial_dir / WORKER_LOG}")
        write_result(trial_dir, result)
    _print_result(result)
    return 0 if result.ok else 1


def _kept_spawn(cfg):
    """The kept warm server's fork (launchers/warm_server.py) when launcher.keep_warm keeps one and the trial trains on
    the CPU: the next run skips the imports; else None, a fresh process as always."""
    from pai_sweep.launchers.warm_client import idle_seconds

    if cfg.launcher.get("warm_start") is False or idle_seconds(cfg.launcher) <= 0:
        return None
    from pai_sweep.preflight import warm_up

    if not warm_up(cfg):  # a CUDA trial needs a fresh process
        return None
    from pai_sweep.launchers.warm import spawn_warm

    return spawn_warm


def _print_result(result) -> None:
    def num(v, fmt="{:.4g}"):
        return "-" if v is None else fmt.format(v)

    line = (
        f"result: {result.status} ({result.reason})  best val {num(result.best_val)}  test at best {num(result.best_test)}  "
        f"params {num(result.params, '{:,}')} (base {num(result.base_params, '{:,}')})  dendrites {result.dendrites}  "
        f"epochs {result.epochs}  {result.seconds:.1f}s"
    )
    print(line, flush=True)
