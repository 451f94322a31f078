"""`pai-sweep check`: not implemented yet (see the open issues)."""

from __future__ import annotations

from pai_sweep.errors import PaiSweepError


def check_command_parser(subparsers) -> None:
    p = subparsers.add_parser("check", help="(not implemented yet)")
    p.add_argument("overrides", nargs="*")
    p.set_defaults(func=check_command)


def check_command(args) -> int:
    raise PaiSweepError("'pai-sweep check' is not implemented yet")
