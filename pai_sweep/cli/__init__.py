"""`pai-sweep`: a thin dispatcher. Bare overrides run a sweep; a first word names a subcommand.

Each subcommand lives in its own module with `<x>_command_parser(subparsers)` and `<x>_command(args)`.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from pai_sweep.errors import PaiSweepError

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
    # Bare Hydra overrides (or nothing) mean "run the sweep".
    if not argv or (argv[0] not in SUBCOMMANDS and not argv[0].startswith("-")):
        argv = ["sweep", *argv]
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except PaiSweepError as exc:
        print(f"pai-sweep: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("pai-sweep: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
