"""`pai-sweep sweep`: not implemented yet (see the open issues)."""

from __future__ import annotations

from pai_sweep.errors import PaiSweepError


def sweep_command_parser(subparsers) -> None:
    p = subparsers.add_parser("sweep", help="(not implemented yet)")
    p.add_argument("overrides", nargs="*")
    p.set_defaults(func=sweep_command)


def sweep_command(args) -> int:
    raise PaiSweepError("'pai-sweep sweep' is not implemented yet")
