"""`pai-sweep report`: not implemented yet (see the open issues)."""

from __future__ import annotations

from pai_sweep.errors import PaiSweepError


def report_command_parser(subparsers) -> None:
    p = subparsers.add_parser("report", help="(not implemented yet)")
    p.add_argument("overrides", nargs="*")
    p.set_defaults(func=report_command)


def report_command(args) -> int:
    raise PaiSweepError("'pai-sweep report' is not implemented yet")
