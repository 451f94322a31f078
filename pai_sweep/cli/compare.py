"""`pai-sweep compare`: not implemented yet (see the open issues)."""

from __future__ import annotations

from pai_sweep.errors import PaiSweepError


def compare_command_parser(subparsers) -> None:
    p = subparsers.add_parser("compare", help="(not implemented yet)")
    p.add_argument("overrides", nargs="*")
    p.set_defaults(func=compare_command)


def compare_command(args) -> int:
    raise PaiSweepError("'pai-sweep compare' is not implemented yet")
