"""The `pai-sweep` console script: the CLI (pai_sweep.cli.main), then the hard exit of cli/exits.py."""

from __future__ import annotations

from pai_sweep.cli.exits import exit_code, exit_now, run_then_exit  # noqa: F401 - exit_code, exit_now: where callers found them


def main() -> None:
    from pai_sweep.cli import main as cli_main

    run_then_exit(cli_main)
