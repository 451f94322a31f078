"""`pai-sweep run`: not implemented yet (see the open issues)."""

from __future__ import annotations

from pai_sweep.errors import PaiSweepError


def run_command_parser(subparsers) -> None:
    p = subparsers.add_parser("run", help="(not implemented yet)")
    p.add_argument("overrides", nargs="*")
    p.set_defaults(func=run_command)


def run_command(args) -> int:
    raise PaiSweepError("'pai-sweep run' is not implemented yet")
