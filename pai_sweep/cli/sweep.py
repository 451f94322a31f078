"""`pai-sweep [OVERRIDES]` / `pai-sweep sweep [OVERRIDES]`: run or resume a sweep (docs/sweeps.md)."""

from __future__ import annotations

import sys


def sweep_command_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "sweep",
        help="run (or resume) a sweep; the same command again continues it",
        description="Run a sweep: Hydra overrides such as model=mlp sweep.n_trials=4 sweep.in_flight=2.",
    )
    p.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. sweep.n_trials=4 +recipe=quick_cpu")
    p.set_defaults(func=sweep_command)


def sweep_command(args) -> int:
    from pai_sweep.compose import compose
    from pai_sweep.driver import exit_status, run_sweep

    cfg = compose(args.overrides)
    code, reason = exit_status(run_sweep(cfg))
    if reason:
        print(f"pai-sweep: error: {reason}", file=sys.stderr)
    return code
