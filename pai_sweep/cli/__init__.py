"""`pai-sweep`: a thin dispatcher. Bare overrides run a sweep; a first word names a subcommand.

Each subcommand lives in its own module with `<x>_command_parser(subparsers)` and `<x>_command(args)`.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from pai_sweep.cli import hydra_flags
from pai_sweep.errors import PaiSweepError, os_error_line  # noqa: F401 - os_error_line: re-exported

# subcommand -> module in pai_sweep.cli (kept short: every entry is a file next to this one)
SUBCOMMANDS = {
    "sweep": "sweep",
    "run": "run",
    "analyze": "analyze",
    "report": "report",
    "compare": "compare",
    "check": "check",
    "recipes": "recipes",
    "env": "env",
    "warm": "warm",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pai-sweep",
        description=(
            "Sweep PerforatedAI dendrite settings. `pai-sweep [OVERRIDES]` runs a sweep "
            "(e.g. `pai-sweep +recipe=quick_cpu sweep.n_trials=4`); subcommands below do the rest."
        ),
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module in SUBCOMMANDS.items():
        mod = importlib.import_module(f"pai_sweep.cli.{module}")
        getattr(mod, f"{module}_command_parser")(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("-v", "--verbose"):  # third-party log lines too (MLflow, alembic)
        import os

        os.environ["PAI_SWEEP_VERBOSE"] = "1"
        argv = argv[1:]
    # Bare Hydra overrides (or nothing) mean "run the sweep"; Hydra's flags (--cfg, --help, ...) work as in any Hydra app.
    sweep_args = argv[1:] if argv[:1] == ["sweep"] else (argv if not argv or argv[0] not in SUBCOMMANDS else None)
    if sweep_args is not None and hydra_flags.wants_hydra(sweep_args):
        return _guard(lambda: hydra_flags.run_hydra_flags(sweep_args, tuple(SUBCOMMANDS)))
    if not argv or (argv[0] not in SUBCOMMANDS and not argv[0].startswith("-")):
        argv = ["sweep", *argv]
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    return _guard(lambda: args.func(args))


def _guard(fn) -> int:
    """Run a command; every error is one line on stderr with its exit code."""
    try:
        return int(fn() or 0)
    except PaiSweepError as exc:
        print(f"pai-sweep: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("pai-sweep: interrupted", file=sys.stderr)
        return 130
    except OSError as exc:  # the file system said no (read-only, full, a file where a folder should be): one line
        print(f"pai-sweep: error: {os_error_line(exc)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
