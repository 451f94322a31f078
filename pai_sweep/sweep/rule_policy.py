"""Which rule recommendations become trials (docs/sweeps.md, "Rule trials").

Three gates, each measured to matter (benchmarks/RESULTS.md, search quality):
1. Timing: rule trials wait until the sampler's own start-up trials have finished, so the space
   is explored before the analysis refines single runs; findings seen earlier wait with them.
2. Evidence: a recommendation is skipped when the parent run shows its changed knobs cannot act
   (knobs that only act after a switch, in a run that never switched; a higher dendrite cap in
   a run that stopped before reaching its cap; a smaller cap the run already measured at plateau).
3. Earned share: a Thompson-sampling bandit. Every finished trial scores a win when it moved the
   study's front (no earlier finished trial dominates it) and a loss otherwise; a rule's next
   trial runs only when a draw from its Beta(1 + wins, 1 + losses) beats a draw from the
   sampler's, whose record starts after its start-up trials (the same period the rules run in).
   A rule whose trials keep losing to the sampler's gets fewer and fewer trials.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import optuna
from optuna.trial import FrozenTrial, TrialState

from pai_sweep import branching
from pai_sweep.sweep.study import RULE, SAMPLER, dominates, origin

# Knobs PerforatedAI reads only at or after a switch (branching.py, one test per knob): they cannot change a run that
# never switched. max_dendrites is judged on its own below (a run can stop at or below its cap).
AFTER_SWITCH = tuple(sorted(branching.POST_SWITCH_DENDRITE_KEYS - {"max_dendrites"}))


@dataclass
class Arm:
    wins: int = 0
    losses: int = 0

    def draw(self, rng: random.Random) -> float:
        return rng.betavariate(1 + self.wins, 1 + self.losses)

    def __str__(self) -> str:
        return f"{self.wins}/{self.wins + self.losses}"


def started(trials: Sequence[FrozenTrial], startup: int) -> bool:
    """The sampler's start-up trials have finished (complete, pruned or failed)."""
    done = [t for t in trials if origin(t) == SAMPLER and t.state.is_finished()]
    return len(done) >= startup


def _feasible(t: FrozenTrial) -> bool:
    return all(c <= 0 for c in t.system_attrs.get("constraints", None) or [])


def arms(trials: Sequence[FrozenTrial], directions: Sequence[optuna.study.StudyDirection], since: int = 0) -> dict[str, Arm]:
    """Wins and losses of the sampler (key SAMPLER) and of each rule (its rule id), in order of completion.

    The sampler's trials count from its `since`-th finished trial on: early in a sweep almost any trial moves the
    front, so counting the start-up phase would set rule trials (which only run after it) against an easier bar."""
    finished = sorted((t for t in trials if t.state.is_finished() and t.datetime_complete is not None),
                      key=lambda t: (t.datetime_complete, t.number))
    front: list[FrozenTrial] = []  # complete, feasible trials seen so far (derived and baseline included)
    out: dict[str, Arm] = {SAMPLER: Arm()}
    sampler_seen = 0
    for t in finished:
        o = origin(t)
        good = t.state == TrialState.COMPLETE and t.values is not None and _feasible(t)
        sampler_seen += o == SAMPLER
        counted = (o == SAMPLER and sampler_seen > since) or o.startswith(RULE)
        if counted:
            key = o[len(RULE):] if o.startswith(RULE) else SAMPLER
            won = good and not any(dominates(f.values, t.values, directions) for f in front)
            arm = out.setdefault(key, Arm())
            if won:
                arm.wins += 1
            else:
                arm.losses += 1
        if good:
            front.append(t)
    return out


def _short(key: str) -> str:
    return key.rsplit(".", 1)[-1]


def _knob_cannot_act(name: str, new: Any, current: Any, history: Any, context: Any, switched: bool) -> str | None:
    """Why changing one knob from current to new cannot change a run like the parent's; None when it can."""
    if name in AFTER_SWITCH:
        return None if switched else f"{name} acts only when dendrites are added, and the run never added any"
    try:
        new, current = int(new), int(current)
    except (TypeError, ValueError):
        return None
    if name == "n_epochs_to_switch":
        if new > current and not switched:
            return f"n_epochs_to_switch {current} -> {new}: the run never switched, a longer wait switches later still"
        return None
    if name != "max_dendrites":
        return None
    if new > current:
        if history.dendrites >= current:
            return None  # the run reached its cap: a higher one can act
        return f"max_dendrites {current} -> {new}: the run stopped at {history.dendrites} dendrite(s), below its cap"
    from pai_sweep.analysis.measures import plateau

    if new in set(history.accepted["dendrites"].astype(int)) and plateau(history, context, new)[0]:
        return f"max_dendrites -> {new}: the run already measured {new} dendrite(s) at plateau"
    return None


def cannot_act(changed: dict[str, Any], parent_params: dict[str, Any], history: Any, context: Any) -> str | None:
    """Why none of the changed knobs (key -> new value) can act in a run like the parent's; None when one can."""
    if history is None or not changed:
        return None
    switched = not history.switches.empty or not history.rejected.empty
    reasons = []
    for key, value in changed.items():
        name = _short(str(key))
        current = parent_params.get(key, getattr(context, name, None))
        why = _knob_cannot_act(name, value, current, history, context, switched)
        if why is None:
            return None
        reasons.append(why)
    return "; ".join(reasons)


def select(
    candidates: Iterable[tuple[str, Any]], trials: Sequence[FrozenTrial], directions: Sequence[optuna.study.StudyDirection],
    rng: random.Random, since: int = 0,
) -> tuple[list[tuple[str, Any]], list[str]]:
    """The candidates (rule id, payload) whose rule wins its draw against the sampler (its trials after the first
    `since`); and one line per candidate cut."""
    table = arms(trials, directions, since)
    sampler = table[SAMPLER]
    keep, cut = [], []
    for rule_id, payload in candidates:
        arm = table.get(rule_id, Arm())
        if arm.draw(rng) >= sampler.draw(rng):
            keep.append((rule_id, payload))
        else:
            cut.append(f"{rule_id} (its trials moved the front {arm}, the sampler's {sampler})")
    return keep, cut
