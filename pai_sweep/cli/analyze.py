"""`pai-sweep analyze`: not implemented yet (see the open issues)."""

from __future__ import annotations

from pai_sweep.errors import PaiSweepError


def analyze_command_parser(subparsers) -> None:
    p = subparsers.add_parser("analyze", help="(not implemented yet)")
    p.add_argument("overrides", nargs="*")
    p.set_defaults(func=analyze_command)


def analyze_command(args) -> int:
    raise PaiSweepError("'pai-sweep analyze' is not implemented yet")
