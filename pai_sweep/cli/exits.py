"""How `pai-sweep` (cli/entry.py) and `python -m pai_sweep` (__main__.py) end: run the CLI, then leave at once.

A sweep's driver has imported Optuna, SQLAlchemy, MLflow, pandas, matplotlib and more; once the
command is done, the interpreter's own teardown (clearing every module, a last garbage collection
of millions of objects) took ~2 s on a 2-core machine, after everything the user asked for was
written. `exit_now` does what a normal exit does that matters, then skips that teardown:
  1. waits for every non-daemon thread (what the interpreter itself waits for first);
  2. runs the atexit handlers (logging's flush, MLflow's end of run, multiprocessing's cleanup,
     weakref finalizers such as temporary folders), each one's error printed as Python would;
  3. flushes stdout and stderr, then os._exit with the command's code.
Files the command wrote are closed by then (summary, report, study and MLflow commits are made
inside the command), so nothing written is lost. `pai_sweep.cli.main` itself still returns the
code (tests and scripts call it in-process).
"""

from __future__ import annotations

import atexit
import os
import sys
import threading


def exit_code(value: object) -> int:
    """The process exit status sys.exit(value) would give (a string is printed to stderr, as sys.exit does)."""
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int):
        print(value, file=sys.stderr)
        return 1
    return value & 0xFF


def exit_now(code: int) -> None:
    """End the process with `code` after the work a normal exit does (threads, atexit), without the teardown."""
    me = threading.current_thread()
    for thread in threading.enumerate():
        if thread is not me and not thread.daemon and thread.is_alive():
            thread.join()
    atexit._run_exitfuncs()  # prints a failing handler's traceback and goes on, as at a normal exit
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError, AttributeError):  # closed, or a broken pipe: nothing more can be said
            pass
    os._exit(code)


def run_then_exit(command) -> None:
    """Run `command` (the CLI's main), then end the process with its code (exit_now): the console script's and
    `python -m pai_sweep`'s whole job."""
    try:
        code = command()
    except SystemExit as exc:  # argparse's --help and usage errors
        code = exit_code(exc.code)
    exit_now(exit_code(code))
