"""Which trials may start from another trial's saved state instead of from epoch 0.

Three kinds of start point, each a resume point (training.PAISession) another trial wrote:

- a branch point, ``trials/<n>/branch/``: the state at the end of the last epoch before the
  parent's first switch. A trial whose run config equals the parent's in everything that acts
  before that switch trains exactly the parent's epochs up to there, so it starts from it.
- a later point, ``trials/<n>/branch-after-switch-<k>/`` (the state just after the parent's k-th
  switch) or ``trials/<n>/branch-at-cap/`` (its state when train.max_epochs stopped it): a trial equal
  to the parent in everything but a larger max_dendrites, a larger epoch cap or the threshold
  entries for dendrites it has not reached there continues from it (the rule "more dendrites",
  "run longer", a sweep over max_dendrites).
- an interrupted trial's own folder (its resume_state.pt): the same run config run again
  (Ctrl-C, a driver restart) continues from its last finished epoch.

What acts before the first switch follows perforatedai 3.2.9 (docs/worker.md, "Branching"):
the knobs below are read only when a dendrite is added or after; the improvement threshold is
a per-dendrite schedule whose first entry judges the neuron phase. Every other key, including
any the code does not know (dendrites.extra), must be equal: an unknown key means no branching.
After a switch every knob has acted but max_dendrites (read when a dendrite would be added; a
point with k dendrites serves a trial allowed at least k) and the epoch cap.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any, Callable, Iterable

from pai_sweep.schema.dendrites import threshold_schedule
from pai_sweep.trial_files import PAI_SAVE_NAME, RESUME_FILE, RUN_CONFIG, write_json

BRANCH_DIR = "branch"  # in a parent's trial folder: the point before its first switch
LATER_PREFIX = "branch-"  # its later points: branch-after-switch-<k>/, branch-at-cap/ (same files as branch/)
BRANCH_STATE = "state.pt"  # the resume point's sidecar (optimizer, scheduler, RNGs, records, tracker values)
BRANCH_INFO = "branch.json"  # {"epoch": epochs in the shared prefix, "signature": prefix_signature(run, dendrites, switches),
# "dendrites" and "switches" (restructures) in the state (0, or absent, for branch/), "kind": before_switch | after_switch
# | at_cap, "trial": the parent's folder name}
BRANCH_MODEL = "branch"  # the model + tracker saved by perforatedai's save_system, pai/branch.pt
POINT_DISK_RESERVE = 2**30  # bytes a start point leaves free on its disk (results, the study, the trial's own files)

# dendrites.* read by perforatedai only at a switch or after it (a test per key: tests/test_branching.py)
POST_SWITCH_DENDRITE_KEYS = frozenset({
    "max_dendrites",  # checked when a dendrite would be added
    "candidate_weight_initialization_multiplier",  # scales the new dendrite's weights
    "max_dendrite_tries",  # retries of a dendrite set that did not help
    "retain_all_dendrites",  # whether a set that did not help is kept
    "find_best_lr",  # the learning-rate search after a switch
})
# Not here, measured: initial_history_after_switches already shapes the running scores of the neuron phase.
# Of those, the one read only when a dendrite set did not help (judged at the switch after it), so not yet right after the
# first switch. retain_all_dendrites is not: it already resets the best score at the first switch (measured).
RETRY_DENDRITE_KEYS = frozenset({"max_dendrite_tries"})
# train.* that change what is written, never what is trained
BOOKKEEPING_TRAIN_KEYS = frozenset({"resume", "graphs", "branch_point", "later_points", "start_from"})


POST_SWITCH_SEARCH_KEYS = frozenset(f"dendrites.{k}" for k in POST_SWITCH_DENDRITE_KEYS)  # as a search space names them


def post_switch_only(keys: Iterable[str]) -> bool:
    """Whether searched (dotted) keys are dendrite knobs that act only at or after the first switch, so every trial of
    the search shares one neuron phase (no keys: every trial is the same run)."""
    return all(k in POST_SWITCH_SEARCH_KEYS for k in keys)


def pre_switch_keys(keys: Iterable[str]) -> list[str]:
    """The searched (dotted) keys that act before the first switch: all but the post-switch knobs and the epoch cap."""
    return [k for k in keys if k not in POST_SWITCH_SEARCH_KEYS | {"train.max_epochs"}]


def _without_bookkeeping(run: dict) -> dict:
    out = json.loads(json.dumps(run, sort_keys=True, default=str))  # a deep, plain copy
    for key in BOOKKEEPING_TRAIN_KEYS:
        out.get("train", {}).pop(key, None)
    return out


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def prefix_signature(run: dict, dendrites: int = 0, switches: int | None = None) -> str | None:
    """A digest of everything in a run config (groups model, downsize, dendrites, data, train) that acts
    before a point: the first switch (dendrites=0), or a state with that many dendrites added after that
    many switches (default: one per dendrite); None when the run cannot share a prefix (no dendrites)."""
    switches = int(dendrites if switches is None else switches)
    plain = _without_bookkeeping(run)
    d = plain.get("dendrites", {})
    if not d.get("enabled", True):
        return None
    plain.get("train", {}).pop("max_epochs", None)  # a cap: find_parent checks the prefix ends before it
    # read when a dendrite would be added: find_parent checks the trial may add as many as the point holds
    d.pop("max_dendrites", None)
    if switches == 0:
        for key in POST_SWITCH_DENDRITE_KEYS:
            d.pop(key, None)
    elif switches == 1:  # no dendrite set judged yet: how often a failed one is retried has not acted
        for key in RETRY_DENDRITE_KEYS:
            d.pop(key, None)
    if "improvement_threshold" in d:  # entry i judges the phase with i dendrites; the last entry repeats
        schedule = threshold_schedule(d["improvement_threshold"])
        head = [schedule[min(i, len(schedule) - 1)] for i in range(int(dendrites) + 1)]
        d["improvement_threshold"] = head[0] if dendrites == 0 else head  # a number before the first switch, as always
    return _digest(plain)


def run_signature(run: dict) -> str:
    """A digest of the whole run config but bookkeeping: equal means the same training, epoch for epoch."""
    return _digest(_without_bookkeeping(run))


def branch_info(branch_dir: Path) -> dict | None:
    """branch.json of a complete start point (written last, after the state and the model), else None."""
    try:
        info = json.loads((Path(branch_dir) / BRANCH_INFO).read_text())
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) and "signature" in info and "epoch" in info else None


def point_dirs(trial_dir: Path) -> list[Path]:
    """A trial folder's start points that other trials may use (branch/ and its later points)."""
    try:
        return sorted(p for p in Path(trial_dir).iterdir() if p.name == BRANCH_DIR or p.name.startswith(LATER_PREFIX))
    except OSError:
        return []


def fits(info: dict, run: dict) -> str:
    """Why the start point `info` describes cannot start `run` ("" when it can)."""
    dendrites = int(info.get("dendrites", 0))
    if info["signature"] != prefix_signature(run, dendrites, info.get("switches")):
        what = "before its first switch" if dendrites == 0 else f"up to its {dendrites} dendrite(s)"
        return f"it was saved by a run that trains differently {what}"
    train = run.get("train", {})
    epoch, cap = int(info["epoch"]), int(train.get("max_epochs", 60))
    # a run the cap ended at this same cap is this trial's whole run: it starts there with nothing left to train
    # (not with a train.train_fn: what it does after its loop would not happen)
    if epoch > cap or (epoch == cap and (info.get("kind") != "at_cap" or train.get("train_fn"))):
        return f"it holds {epoch} epochs, train.max_epochs={cap} leaves none to train"
    allowed = run.get("dendrites", {}).get("max_dendrites")
    if allowed is not None and int(allowed) < dendrites:
        return f"it holds {dendrites} dendrites, dendrites.max_dendrites={allowed} allows fewer"
    return ""


def find_parent(candidates: Iterable[tuple[int, Path]], run: dict,
                known: dict[str, dict] | None = None) -> tuple[int, Path, int] | None:
    """The deepest start point (most epochs; a run the same epoch cap ended, whose knobs that differ never acted,
    is the whole run) among the candidate trials (number, folder) that fits `run`:
    (number, point folder, epochs in the prefix), else None. `known` keeps the branch.json of every point
    found (it never changes once written), so a sweep reads each once, not once per launch."""
    if prefix_signature(run) is None:
        return None
    known = {} if known is None else known
    best: tuple[int, Path, int] | None = None
    for number, trial_dir in candidates:
        for point in point_dirs(trial_dir):
            info = known.get(str(point)) if (point / BRANCH_INFO).exists() else None
            info = info or branch_info(point)
            if info is None:
                known.pop(str(point), None)
                continue
            known[str(point)] = info
            if not fits(info, run) and (best is None or int(info["epoch"]) > best[2]):
                best = (number, point, int(info["epoch"]))
    return best


def seed_trial(start_from: str | Path, trial_dir: Path, run: dict, load_run: Callable[[Path], dict]) -> tuple[dict | None, str]:
    """Copy a start point into a fresh trial folder as the trial's own resume point, so the worker
    continues from it. `load_run` reads a trial folder's run config as `run` is given (all groups, schema
    defaults filled in). Returns (what it started from, "") or (None, why it cannot: train from epoch 0)."""
    start = Path(start_from)
    info = branch_info(start)
    if info is not None:
        why = fits(info, run)
        if why:
            return None, f"{start}: {why}"
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
    return {"kind": kind, "from": str(start), "epoch": epoch, "parent": info.get("trial") if info else None,
            **({"dendrites": int(info.get("dendrites", 0))} if info else {})}, ""


def write_point(dest: Path, resume_file: Path, info: dict, checkpoints: tuple[Path, ...], log: Callable[[str], None],
                save: Callable[[], Any] | None = None) -> bool:
    """The resume point last saved in `resume_file` (its model in pai/, in the working directory; `save` saves it first
    when nothing else did this epoch) plus `checkpoints` (files in pai/) become the start point `dest` (written aside,
    renamed into place, branch.json last: the driver reads it as the sign it is complete). A point only saves later
    trials work: when it cannot be saved or written (a full disk) the trial goes on without it (False)."""
    import torch

    tmp = dest.with_name(f".{dest.name}.tmp")
    try:
        if save is not None:
            save()
        state = torch.load(resume_file, weights_only=False)
        model = Path(PAI_SAVE_NAME) / f"{state['tracker']['name']}.pt"
        need = sum(p.stat().st_size for p in (Path(resume_file), model, *checkpoints) if p.exists())
        free = shutil.disk_usage(dest.parent).free
        if free - need < POINT_DISK_RESERVE:  # a point must never take the room a result or the study needs
            log(f"pai-sweep: no start point {dest.name}: {free / 2**30:.1f} GiB free on the trial folder's disk, a point "
                f"needs {need / 2**20:.0f} MiB and {POINT_DISK_RESERVE / 2**30:.0f} GiB stay free; sweep.branching=first keeps fewer")
            return False
        shutil.rmtree(tmp, ignore_errors=True)
        (tmp / PAI_SAVE_NAME).mkdir(parents=True)
        shutil.copyfile(model, tmp / PAI_SAVE_NAME / f"{BRANCH_MODEL}.pt")
        for path in checkpoints:
            if path.exists():
                shutil.copyfile(path, tmp / PAI_SAVE_NAME / path.name)
        state["tracker"]["name"] = BRANCH_MODEL
        torch.save(state, tmp / BRANCH_STATE)
        shutil.rmtree(dest, ignore_errors=True)
        tmp.replace(dest)
        write_json(dest / BRANCH_INFO, info)
    except (OSError, RuntimeError) as exc:  # torch.save reports a full disk as a RuntimeError
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(dest, ignore_errors=True)
        why = getattr(exc, "strerror", None) or " ".join(str(exc).split())
        log(f"pai-sweep: no start point {dest.name}: {why}; the trial goes on without it")
        return False
    return True
