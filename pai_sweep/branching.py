"""Which trials may start from another trial's saved state instead of from epoch 0.

Two kinds of start point, both a resume point (training.PAISession) another trial wrote:

- a branch point, ``trials/<n>/branch/``: the state at the end of the last epoch before the
  parent's first switch. A trial whose run config equals the parent's in everything that acts
  before that switch trains exactly the parent's epochs up to there, so it starts from it.
- an interrupted trial's own folder (its resume_state.pt): the same run config run again
  (Ctrl-C, a driver restart) continues from its last finished epoch.

What acts before the first switch follows perforatedai 3.2.9 (docs/worker.md, "Branching"):
the knobs below are read only when a dendrite is added or after; the improvement threshold is
a per-dendrite schedule whose first entry judges the neuron phase. Every other key, including
any the code does not know (dendrites.extra), must be equal: an unknown key means no branching.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any, Callable, Iterable

from pai_sweep.schema.dendrites import threshold_schedule
from pai_sweep.trial_files import PAI_SAVE_NAME, RESUME_FILE, RUN_CONFIG

BRANCH_DIR = "branch"  # in a parent's trial folder
BRANCH_STATE = "state.pt"  # the resume point's sidecar (optimizer, scheduler, RNGs, records, tracker values)
BRANCH_INFO = "branch.json"  # {"epoch": epochs in the shared prefix, "signature": prefix_signature(run)}
BRANCH_MODEL = "branch"  # the model + tracker saved by perforatedai's save_system, pai/branch.pt

# dendrites.* read by perforatedai only at a switch or after it (a test per key: tests/test_branching.py)
POST_SWITCH_DENDRITE_KEYS = frozenset({
    "max_dendrites",  # checked when a dendrite would be added
    "candidate_weight_initialization_multiplier",  # scales the new dendrite's weights
    "max_dendrite_tries",  # retries of a dendrite set that did not help
    "retain_all_dendrites",  # whether a set that did not help is kept
    "find_best_lr",  # the learning-rate search after a switch
})
# Not here, measured: initial_history_after_switches already shapes the running scores of the neuron phase.
# train.* that change what is written, never what is trained
BOOKKEEPING_TRAIN_KEYS = frozenset({"resume", "graphs", "branch_point", "start_from"})


def _without_bookkeeping(run: dict) -> dict:
    out = json.loads(json.dumps(run, sort_keys=True, default=str))  # a deep, plain copy
    for key in BOOKKEEPING_TRAIN_KEYS:
        out.get("train", {}).pop(key, None)
    return out


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def prefix_signature(run: dict) -> str | None:
    """A digest of everything in a run config (groups model, downsize, dendrites, data, train) that acts
    before the first switch; None when the run cannot share a prefix (no dendrites: no switch)."""
    plain = _without_bookkeeping(run)
    dendrites = plain.get("dendrites", {})
    if not dendrites.get("enabled", True):
        return None
    for key in POST_SWITCH_DENDRITE_KEYS:
        dendrites.pop(key, None)
    plain.get("train", {}).pop("max_epochs", None)  # a cap: find_parent checks the prefix ends before it
    if "improvement_threshold" in dendrites:
        dendrites["improvement_threshold"] = threshold_schedule(dendrites["improvement_threshold"])[0]
    return _digest(plain)


def run_signature(run: dict) -> str:
    """A digest of the whole run config but bookkeeping: equal means the same training, epoch for epoch."""
    return _digest(_without_bookkeeping(run))


def branch_info(branch_dir: Path) -> dict | None:
    """branch.json of a complete branch point (written last, after the state and the model), else None."""
    try:
        info = json.loads((Path(branch_dir) / BRANCH_INFO).read_text())
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) and "signature" in info and "epoch" in info else None


def find_parent(candidates: Iterable[tuple[int, Path]], signature: str | None, max_epochs: int,
                known: dict[int, dict] | None = None) -> tuple[int, Path, int] | None:
    """The first candidate trial (number, folder) with a branch point of this prefix signature that leaves
    epochs to train: (number, branch folder, epochs in the prefix), else None. `known` keeps the branch.json of
    every trial found with one (it never changes once written), so a sweep reads each once, not once per launch."""
    if signature is None:
        return None
    known = {} if known is None else known
    for number, trial_dir in candidates:
        branch = Path(trial_dir) / BRANCH_DIR
        info = known.get(number) or branch_info(branch)
        if info is not None:
            known[number] = info
        if info is not None and info["signature"] == signature and int(info["epoch"]) < int(max_epochs):
            return number, branch, int(info["epoch"])
    return None


def seed_trial(start_from: str | Path, trial_dir: Path, run: dict, load_run: Callable[[Path], dict]) -> tuple[dict | None, str]:
    """Copy a start point into a fresh trial folder as the trial's own resume point, so the worker
    continues from it. `load_run` reads a trial folder's run config as `run` is given (all groups, schema
    defaults filled in). Returns (what it started from, "") or (None, why it cannot: train from epoch 0)."""
    start = Path(start_from)
    info = branch_info(start)
    if info is not None:
        if info["signature"] != prefix_signature(run):
            return None, f"{start} was saved by a run that trains differently before its first switch"
        state, kind, epoch = start / BRANCH_STATE, "branch", int(info["epoch"])
    elif (start / RUN_CONFIG).exists():
        try:
            theirs = load_run(start)
        except Exception as exc:  # noqa: BLE001 - any unreadable config means: do not continue from it
            return None, f"{start / RUN_CONFIG} cannot be read ({' '.join(str(exc).split())})"
        if run_signature(theirs) != run_signature(run):
            return None, f"{start} ran another config"
        state, kind, epoch = start / RESUME_FILE, "continue", None
    else:
        return None, f"{start} is neither a branch point (no {BRANCH_INFO}) nor a trial folder (no {RUN_CONFIG})"
    pai = start / PAI_SAVE_NAME
    if not state.is_file() or not pai.is_dir():
        return None, f"{start} holds no saved state ({state.name} and {PAI_SAVE_NAME}/ are needed)"
    try:
        shutil.copytree(pai, trial_dir / PAI_SAVE_NAME, dirs_exist_ok=True)
        shutil.copyfile(state, trial_dir / RESUME_FILE)
    except OSError as exc:
        return None, f"cannot copy {start} ({exc.strerror or exc})"
    return {"kind": kind, "from": str(start), "epoch": epoch, "parent": info.get("trial") if info else None}, ""
