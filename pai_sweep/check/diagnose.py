"""Known failure signatures of perforatedai 3.2.9 -> PerforatedAI's setup guide's explanation and fix.

    d = diagnose(worker_log_text, exc)       # None when nothing known matches
    reason = failure_reason(exc)             # the worker's one line for result.json: cause, and the fix where known

The library reports most problems by printing lines, then calling pdb.set_trace() (with
stdin closed this raises bdb.BdbQuit) or sys.exit(0) / sys.exit(-1). The printed lines,
not the exception, say what went wrong, so every signature is matched on the log text.
With stdin at EOF pdb may let the run go on to a second trap: the earliest signature in
the log is the cause.
"""

from __future__ import annotations

import bdb
import os
import re
import sys
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Optional

from pai_sweep.errors import PaiSweepError

# A rule returns (position of the match in the log, diagnosis) or None.
Found = Optional[tuple[int, "Diagnosis"]]


@dataclass
class Diagnosis:
    cause: str  # short id, e.g. "output_dimensions_mismatch"
    explanation: str  # what happened, in the setup guide's words
    fix: str  # what to change, as pai-sweep settings where possible
    evidence: str = ""  # the log line(s) that matched

    def __str__(self) -> str:
        return f"{self.cause}: {self.explanation} Fix: {self.fix}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _following(text: str, pos: int, count: int) -> list[str]:
    """The `count` non-empty lines after the line holding `pos`."""
    lines = [ln.strip() for ln in text[pos:].splitlines()[1:] if ln.strip()]
    return (lines + [""] * count)[:count]


def override_arg(path: str, dims: list[int]) -> str:
    """The command-line override giving one module its own dims (merged into the preset's overrides)."""
    return f"'+dendrites.output_dimension_overrides={{{path.lstrip('.')}:[{','.join(str(int(v)) for v in dims)}]}}'"


def dims_for_rank(rank: int) -> list[int] | None:
    """The setup guide's rule by output rank: [B, F] -> [-1, 0]; [B, T, F] -> [-1, -1, 0]; [B, C, H, W] -> [-1, 0, -1, -1]."""
    return {2: [-1, 0], 3: [-1, -1, 0], 4: [-1, 0, -1, -1], 5: [-1, 0, -1, -1, -1]}.get(rank)


def _dims_mismatch(text: str) -> Found:
    found = re.search(r"has not properly set this_output_dimensions", text)
    if not found:
        return None
    # The library prints: module name, "it is expecting:", dims, "but received", shape.
    name, _, expecting, _, received = _following(text, found.start(), 5)
    expecting = re.sub(r"^tensor\((.*)\)$", r"\1", " ".join(expecting.split()))
    rank = len(re.findall(r"\d+", received))
    fits = dims_for_rank(rank)
    # a 3-D output is [batch, tokens, features] after a Linear but [batch, channels, time] after a Conv1d
    conv1d = f" ({override_arg(name or 'MODULE', [-1, 0, -1])} if it is a Conv1d)" if rank == 3 else ""
    fix = (
        f"give {name} its own dims: {override_arg(name or 'MODULE', fits)}{conv1d} (0 on the neuron axis of its output), "
        "or use dendrites=auto, which infers every module's dims"
        if fits else "give the module its own dims in dendrites.output_dimension_overrides, or use dendrites=auto"
    )
    return found.start(), Diagnosis(
        "output_dimensions_mismatch",
        f"module {name} expects output_dimensions {expecting} but its output has shape {received}; "
        "PerforatedAI then ends the process with exit code 0 on the first backward pass (no result, not a success).",
        fix,
        f"{name} expecting {expecting} received {received}",
    )


def _unknown_knob(text: str) -> Found:
    found = list(re.finditer(r"(?:List )?Variable '([^']+)' does not exist\.\s+Ignoring (?:set|append) attempt", text))
    if not found:
        return None
    names = list(dict.fromkeys(m.group(1) for m in found))
    return found[0].start(), Diagnosis(
        "unknown_setting",
        f"PerforatedAI ignored setting(s) {', '.join(names)}: no such knob in 3.2.9, so the run used the default instead.",
        "remove or rename them in dendrites.extra (e.g. n_epochs_for_switch_history does not exist; history_lookback does); "
        "`pai-sweep check` lists the valid names",
        "; ".join(f"Variable '{n}' does not exist" for n in names),
    )


def _unwrapped_params(text: str) -> Found:
    marker = "The following params are not tracked or wrapped."
    pos = text.find(marker)
    if pos < 0:
        return None
    names = [ln for ln in _following(text, pos, 40) if ln.startswith(".")]
    shown = ", ".join(names[:6]) + (" ..." if len(names) > 6 else "")
    return pos, Diagnosis(
        "unwrapped_parameters",
        f"parameters outside every perforated or tracked module ({shown or 'listed in the log'}) made PerforatedAI stop in its debugger (pdb).",
        "track their module types (dendrites.module_names_to_track=[BatchNorm2d,LayerNorm,Embedding,...]) or perforate them; "
        "pai-sweep's perforate step confirms unwrapped modules, so the library was configured outside it",
        marker,
    )


def _missing_state(text: str) -> Found:
    found = re.search(r"This value is missing from the state dict", text)
    if not found:
        return None
    module = re.search(r"Module was: (\S+)", text[found.start():])
    name = module.group(1) if module else "the module named in the log"
    return found.start(), Diagnosis(
        "module_without_gradient",
        f"perforated module {name} got no gradient (defined but never used in forward, or frozen), so it has no dendrite "
        "state; PerforatedAI stopped in pdb when it reloaded the model at a switch.",
        f"track it instead (dendrites.module_ids_to_track=[{name}]), remove it from the model, or unfreeze it if it should train",
        found.group(0) + (f" (Module was: {name})" if module else ""),
    )


def _match(pattern: str, cause: str, explanation: str, fix: str) -> Callable[[str], Found]:
    regex = re.compile(pattern)

    def rule(text: str) -> Found:
        found = regex.search(text)
        return (found.start(), Diagnosis(cause, explanation, fix, found.group(0).strip())) if found else None

    return rule


SPECIFIC: list[Callable[[str], Found]] = [
    _dims_mismatch,
    _unwrapped_params,
    _missing_state,
    _match(
        r"Need to call \.module when using add validation score",
        "dataparallel_or_module_attribute",
        "the model handed to PerforatedAI is wrapped in DataParallel/DDP or has an attribute named `module`, "
        "which the tracker takes for a DataParallel wrapper and stops in pdb.",
        "pass the bare model (model.module) and rename any attribute called `module`; run one GPU per trial instead of DataParallel",
    ),
    _match(
        r"potentially found a norm Layer that is not accounted for[^\n]*|You have an unwrapped normalization layer[^\n]*",
        "unwrapped_norm_layer",
        "a normalization layer (BatchNorm/LayerNorm/InstanceNorm) is neither perforated with the layer before it nor tracked, "
        "and PerforatedAI stopped in pdb.",
        "add its class to dendrites.module_names_to_track (e.g. [BatchNorm2d], or [BatchNorm1d] in a Conv1d net) or perforate the block containing it (dendrites=resnet / dendrites=auto)",
    ),
    _match(
        r"never had gradients flow through it|this occurred in module: [^\n]*",
        "module_without_gradient",
        "a perforated module got no gradient (frozen weights, or defined but never used in forward), and PerforatedAI stopped in pdb.",
        "track it instead (dendrites.module_ids_to_track=[.its.path]) or remove it from the model; unfreeze it if it should train",
    ),
    _match(
        r"A switch mode must be set[^\n]*",
        "bad_switch_mode",
        "PerforatedAI found no valid switch mode and stopped in pdb.",
        "set dendrites.switch_mode to one of history, fixed, no_switch, every_time",
    ),
    _match(
        r"Error loading state_dict[^\n]*|Error: (?:Multiple|No) tracker_string[^\n]*"
        r"|does not have any pai_modules in it|Error\(s\) in loading state_dict[^\n]*",
        "state_dict_mismatch",
        "reloading a checkpoint (best model at a switch, or a resume) found a state dict that does not match the model: "
        "the model changed after perforate_model, it was never perforated, or a different model object was passed to add_validation_score.",
        "keep the model definition fixed during a run, pass the perforated model itself to the tracker, and start from a fresh trial folder",
    ),
    _match(
        r"should be float, int, or tensor, yours is a[^\n]*|Unknown format code 'f' for object of type '[^']*'",
        "non_numeric_score",
        "a score handed to PerforatedAI was not a float, int or one-element tensor.",
        "return a plain number from the validation/extra score (e.g. float(acc)); a custom train_fn must not return strings or dicts",
    ),
    _match(
        r"The output of the above module [^\n]* is a tuple[^\n]*",
        "tuple_output",
        "a perforated module returns a tuple, which PerforatedAI cannot combine with dendrite outputs; it stopped in pdb.",
        "perforate the layers inside that module instead of the module itself (remove its class from module_names_to_perforate), or use dendrites=auto",
    ),
    _match(
        r"save_name '[^']*' contains '/'[^\n]*",
        "bad_save_name",
        "PerforatedAI refuses a save_name with '/' and exits with code 1.",
        "use a plain save name (pai-sweep always uses 'pai' inside the trial folder)",
    ),
]

# Used only when no specific signature matched.
FALLBACK: list[Callable[[str], Found]] = [
    _match(
        r"bdb\.BdbQuit|BdbQuit",
        "pdb_trap",
        "PerforatedAI stopped in its debugger (pdb.set_trace) and, with no terminal, quit; the lines above it in the log name the problem.",
        "run `pai-sweep check` with the same overrides: it names unwrapped modules, dims and gradient problems before training",
    ),
    _unknown_knob,  # an ignored knob rarely explains a crash that another rule names
]


def diagnose(log_text: str, exc: BaseException | None = None) -> Diagnosis | None:
    """The earliest known signature in `log_text` (plus the exception's text), or None."""
    text = log_text or ""
    if exc is not None:
        text += f"\n{type(exc).__module__}.{type(exc).__name__}: {exc}"
    for rules in (SPECIFIC, FALLBACK):
        hits = [hit for hit in (rule(text) for rule in rules) if hit is not None]
        if hits:
            return min(hits, key=lambda hit: hit[0])[1]
    if isinstance(exc, SystemExit) and exc.code in (0, None):
        return Diagnosis(
            "silent_exit",
            "the process ended with exit code 0 before training finished; PerforatedAI calls sys.exit(0) on some setup errors.",
            "run `pai-sweep check` with the same overrides to find the module and setting at fault",
            f"SystemExit({exc.code!r})",
        )
    return None


# ---------------------------------------------------------------- a failed trial's one-line reason (the worker's)


def failure_reason(exc: BaseException) -> str:
    """One line naming the cause and, where known, the fix (the library's known crash signatures explained)."""
    reason = _reason(exc)
    if isinstance(exc, (PaiSweepError, KeyboardInterrupt)) or (isinstance(exc, SystemExit) and exc.code in (0, None)):
        return reason  # already precise (our own errors, the dims exit-0 message)
    found = diagnose(_own_log_tail(), exc)
    if found is None:
        return reason
    return " ".join(f"{reason} -- {found.explanation} Fix: {found.fix}".split())[:900]


def _reason(exc: BaseException) -> str:
    if isinstance(exc, PaiSweepError):
        return " ".join(str(exc).split())
    if isinstance(exc, bdb.BdbQuit):
        where = _library_frame(exc)
        if not where:
            return f"pdb.set_trace() was reached with no terminal (stdin is closed){_last_frame(exc)}: remove it"
        return (
            f"PerforatedAI stopped in its debugger (pdb.set_trace{where}); its message is in worker.log just "
            "above '(Pdb)': usually a module to track (norm layers), a score that is not a number, or a "
            "perforated module without gradient"
        )
    if isinstance(exc, SystemExit):
        code = exc.code
        if code in (0, None):
            found = _DIMS_MESSAGE.search(_own_log_tail())
            if found:
                name = found.group(1).lstrip(".")
                dims, shape = ([v.strip() for v in g.split(",") if v.strip()] for g in found.group(2, 3))
                rank = len(shape)
                dims, shape = f"[{', '.join(dims)}]", ", ".join(shape)
                return (
                    f"PerforatedAI exited with code 0 before training finished: module {name} expects output dimensions "
                    f"{dims} but its output has shape [{shape}] ({rank}-D); set "
                    f"dendrites.output_dimension_overrides.{name}=[...] with {rank} entries, one of them 0 (the neuron axis)"
                )
            return (
                "PerforatedAI exited with code 0 before training finished: the output_dimensions of a perforated "
                "module do not fit its output (worker.log names it); set "
                "dendrites.output_dimension_overrides.<module>=[...]"
            )
        return f"PerforatedAI exited with code {code}{_library_frame(exc)}; its message is at the end of worker.log"
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted (SIGINT)"
    text = " ".join(str(exc).split())
    if isinstance(exc, MemoryError) or "out of memory" in text.lower():
        return f"out of memory ({type(exc).__name__}): lower train.batch_size or the model size"
    return f"{type(exc).__name__}: {text}{_last_frame(exc)}"[:600]


# What the library prints before its sys.exit(0) on an output_dimensions mismatch.
_DIMS_MESSAGE = re.compile(
    r"has not properly set this_output_dimensions\s*\n\s*(\S+)\s*\nit is expecting:\s*\n\s*tensor\(\[([^\]]*)\]\)"
    r"\s*\nbut received\s*\n\s*torch\.Size\(\[([^\]]*)\]\)"
)


def _own_log_tail(limit: int = 50_000) -> str:
    """The end of this process's stdout when it is a file (worker.log): the library prints its reasons there."""
    try:
        sys.stdout.flush()
        path = os.readlink("/proc/self/fd/1")
        if not os.path.isfile(path):
            return ""
        with open(path, "rb") as fh:
            fh.seek(max(0, os.path.getsize(path) - limit))
            return fh.read().decode(errors="replace")
    except OSError:
        return ""


def _library_frame(exc: BaseException) -> str:
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if "perforatedai" in f.filename]
    if not frames:
        return ""
    f = frames[-1]
    return f" in {Path(f.filename).stem}.{f.name}"


def _last_frame(exc: BaseException) -> str:
    # the innermost frame outside the debugger's own modules
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if Path(f.filename).stem not in ("bdb", "pdb")]
    if not frames:
        return ""
    f = frames[-1]
    return f" (at {Path(f.filename).name}:{f.lineno} in {f.name})"
