"""The one base exception and its thin subclasses. Each message is one line: the problem and the fix."""

import difflib
import errno
from typing import Iterable


class PaiSweepError(Exception):
    """Base of every error pai-sweep raises on purpose; the CLI prints it as one line, no traceback."""

    exit_code = 2  # the CLI's exit status for it (README: exit codes)


class ConfigError(PaiSweepError):
    """Raised when a config does not compose or validate (unknown key, option, type, value)."""


class ModelError(PaiSweepError):
    """Raised when a model cannot be built (unknown name, bad `_target_`, downsizing that does not apply)."""


class DataError(PaiSweepError):
    """Raised when a data set cannot be loaded (missing folder, offline download, bad `_target_`)."""


class IntegrationError(PaiSweepError):
    """Raised when PerforatedAI cannot work with the model as configured (dims, modules, knobs)."""


class AnalysisError(PaiSweepError):
    """Raised when a folder is not readable PerforatedAI output."""


class SweepError(PaiSweepError):
    """Raised when a sweep cannot start or must stop (bad space, incompatible resume, too many failures)."""


class TooManyFailures(SweepError):
    """Raised when sweep.max_failures trials have failed: the sweep stops (exit code 3)."""

    exit_code = 3


class CheckFailed(SweepError):
    """Raised when the sweep's one-off integration check finds the model cannot work: no trial runs."""


class LauncherError(PaiSweepError):
    """Raised when a trial cannot be submitted (unknown partition, missing shared folder)."""


class TrackingError(PaiSweepError):
    """Raised when the tracking store is misconfigured (malformed URI)."""


def os_error_line(exc: OSError, fix: bool = True) -> str:
    """'PATH: Read-only file system (errno 30 EROFS): FIX' for any OSError on a file or folder (fix=False: without FIX)."""
    path = exc.filename if exc.filename is not None else "a file"
    name = errno.errorcode.get(exc.errno, "?") if exc.errno is not None else "?"
    line = f"{path}: {exc.strerror or exc} (errno {exc.errno} {name})"
    if not fix:
        return line
    advice = {errno.ENOSPC: "free disk space or choose a folder on another disk",
              errno.EDQUOT: "free space within your quota or choose another folder"}.get(
        exc.errno, "make it writable or choose another folder (e.g. sweep.dir=..., --out ...)")
    return f"{line}: {advice}"


def close_names(name: str, names: Iterable[str]) -> str:
    """' (did you mean a, b?)' for up to three of `names` close to `name`, else ''."""
    matches = difflib.get_close_matches(name, sorted(names), n=3, cutoff=0.5)
    return f" (did you mean {', '.join(matches)}?)" if matches else ""


def one_line(exc: BaseException) -> str:
    """'TypeName: the message on one line' (just the type name when the message is empty)."""
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
