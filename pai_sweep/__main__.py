"""`python -m pai_sweep`: as the `pai-sweep` console script (cli/entry.py), the CLI then the hard exit."""

from pai_sweep.cli import main
from pai_sweep.cli.exits import run_then_exit

run_then_exit(main)
