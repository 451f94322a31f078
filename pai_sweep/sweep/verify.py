"""After a trial: what the worker reports it built must be what the study records for it.

The study records the trial's run.yaml (the config with the trial's searched values); the worker
writes what it really built into result.json's `built` (the model fields its builder read after
downsizing, the perforated modules, the dendrite knobs read back from PerforatedAI). Any
difference fails the trial with one line naming the key, the recorded value and the built one,
so no value the trial never used reaches the objective or the efficiency front.

Derived trials (origin "derived": a smaller max_dendrites than the run grew) are made from a
verified run's own rows and never come through here.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from pai_sweep.trial_files import RUN_CONFIG, TrialResult

PREFIX = "the trial did not build what the study records"


def built_mismatch(trial_dir: Path, result: TrialResult) -> str | None:
    """One line listing every recorded value the built trial contradicts, or None when they agree."""
    built = result.built
    if not built:
        return None  # a worker from before `built` existed: nothing to compare
    from omegaconf import OmegaConf

    from pai_sweep.models.downsize import apply_downsize

    try:
        run = OmegaConf.load(Path(trial_dir) / RUN_CONFIG)
    except (OSError, ValueError):
        return None  # no run.yaml: the driver did not write this folder
    problems = []
    expected = apply_downsize(run.model, run.get("downsize") or {})
    for key, got in sorted((built.get("model") or {}).items()):
        want = OmegaConf.to_container(expected, resolve=True).get(key)
        if not same(want, got):
            source = " (model.width_mult x downsize.width_mult)" if key == "width_mult" else ""
            problems.append(f"model.{key} recorded {want}{source}, built {got}")
    problems += _dendrites(run.dendrites, built, result)
    if not problems:
        return None
    return f"{PREFIX}: " + "; ".join(problems)


def _dendrites(d: Any, built: dict, result: TrialResult) -> list[str]:
    perforated = built.get("perforated") or {}
    knobs = built.get("knobs") or {}
    if not d.enabled:
        return [f"dendrites.enabled recorded false, built with dendrites on {', '.join(perforated)}"] if perforated else []
    problems = []
    if not perforated:
        problems.append("dendrites.enabled recorded true, built with no perforated module")
    extra = d.get("extra") or {}
    for key, got in sorted(knobs.items()):
        want = extra[key] if key in extra else d.get(key)
        if not same(want, got):
            where = f"dendrites.extra.{key}" if key in extra else f"dendrites.{key}"
            problems.append(f"{where} recorded {_shown(want)}, PerforatedAI was configured with {_shown(got)}")
    if d.preset != "auto":  # auto derives the module choices from the model
        names, ids = set(d.module_names_to_perforate), set(d.module_ids_to_perforate)
        wrong = [f"{p} ({cls})" for p, cls in perforated.items() if cls not in names and p not in ids]
        if wrong:
            problems.append(f"dendrites.module_names_to_perforate recorded {sorted(names)}, built perforating {', '.join(wrong)}")
    if result.dendrites is not None and result.dendrites > int(d.max_dendrites):
        problems.append(f"dendrites.max_dendrites recorded {d.max_dendrites}, the run grew {result.dendrites} dendrites")
    return problems


def same(want: Any, got: Any) -> bool:
    """Equal, with a tolerance for numbers and element by element for lists."""
    if hasattr(want, "_metadata"):
        from omegaconf import OmegaConf

        want = OmegaConf.to_container(want, resolve=True)
    if isinstance(want, (list, tuple)) and isinstance(got, (list, tuple)):
        return len(want) == len(got) and all(same(w, g) for w, g in zip(want, got))
    if isinstance(want, bool) or isinstance(got, bool):
        return type(want) is type(got) and want == got
    if isinstance(want, (int, float)) and isinstance(got, (int, float)):
        return math.isclose(float(want), float(got), rel_tol=1e-6, abs_tol=1e-12)
    return want == got


def _shown(value: Any) -> str:
    if hasattr(value, "_metadata"):
        from omegaconf import OmegaConf

        value = OmegaConf.to_container(value, resolve=True)
    return str(value)
