"""run_check: every check on one composed config -> a short verdict a person can act on, and check.json.

A problem is something that will stop or silently spoil a run (the verdict fails); a note
is worth knowing but harmless. The capacity test runs last, only when nothing static failed.
"""

from __future__ import annotations

import inspect as pyinspect
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from pai_sweep.errors import PaiSweepError
from pai_sweep.trial_files import write_json

CHECK_JSON = "check.json"


@dataclass
class CheckResult:
    ok: bool  # the integration can work as configured
    verdict: str  # a few lines: what is wrong and the fix, or what to expect
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    preset: str = ""  # the preset that fits this model
    preset_reason: str = ""
    inspection: dict[str, Any] = field(default_factory=dict)
    dims: dict[str, Any] = field(default_factory=dict)
    cost: dict[str, Any] = field(default_factory=dict)
    capacity: dict[str, Any] | None = None
    dendrites: dict[str, Any] = field(default_factory=dict)  # the dendrites config checked (auto resolved)
    path: str = ""  # where check.json was written

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def direction_problems(dendrites: Any, train: Any, task: str) -> list[str]:
    """The score the loop hands PerforatedAI vs maximizing_score, and the scheduler's mode."""
    out = []
    maximizing = bool(dendrites.get("maximizing_score", True))
    if not train.get("train_fn"):
        metric, wants = ("accuracy", True) if task == "classification" else ("validation loss", False)
        if maximizing != wants:
            out.append(f"the built-in loop reports the {metric} for a {task} task, but dendrites.maximizing_score={maximizing}: set dendrites.maximizing_score={str(wants).lower()}")
    sched = train.get("scheduler") or {}
    mode = (sched.get("args") or {}).get("mode")
    if str(sched.get("type") or "").endswith("ReduceLROnPlateau") and mode in ("max", "min") and (mode == "max") != maximizing:
        want = "max" if maximizing else "min"
        out.append(f"train.scheduler.args.mode={mode} but the score is {'maximized' if maximizing else 'minimized'}: set train.scheduler.args.mode={want}")
    from pai_sweep.task import loss_problems

    return loss_problems(train, task) + out


def device_problems(train: Any) -> tuple[list[str], str]:
    import torch

    name = str(train.get("device") or "auto")
    if name == "auto":
        return [], "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        return [f"train.device={name} but no CUDA device is visible: use train.device=cpu or auto"], name
    return [], name


def loop_problems(train_fn: str | None) -> list[str]:
    """A user train_fn must take the model back from session.report and fetch the optimizer again after a restructure."""
    if not train_fn:
        return []  # the built-in loop rebuilds optimizer and scheduler after every restructure
    from pai_sweep.models.target import resolve_callable

    try:
        source = pyinspect.getsource(resolve_callable(train_fn, "train.train_fn"))
    except PaiSweepError as exc:
        return [str(exc)]
    except (OSError, TypeError):
        return []  # no source to read (compiled): nothing to say
    out = []
    if ".report(" not in source:
        out.append(f"train.train_fn={train_fn} never calls session.report(val): PerforatedAI never sees a score and adds no dendrites")
    elif not re.search(r"\bmodel\b[^=\n]*=\s*session\.report\(", source) and "session.model" not in source:
        out.append(f"train.train_fn={train_fn} ignores the model session.report returns: after a restructure it trains the old model; use `model, restructured, complete = session.report(...)`")
    if re.search(r"torch\.optim\.(?!lr_scheduler)\w+\(", source):
        out.append(f"train.train_fn={train_fn} builds its own optimizer: after a restructure it still holds the old parameters; use session.optimizer() (rebuilt after each restructure)")
    elif source.count(".optimizer()") < 2 and "restructured" not in source:
        out.append(f"train.train_fn={train_fn} does not fetch session.optimizer() again after `restructured`: the old optimizer misses the dendrite parameters")
    if re.search(r"scheduler\.step\(", source):
        out.append(f"train.train_fn={train_fn} calls scheduler.step(): with dendrites PerforatedAI steps the scheduler itself (it would step twice)")
    return out


def _cost(inspection: Any, dims: Any, base: int, max_dendrites: int) -> dict[str, Any]:
    from pai_sweep.check.cost import projection, sizes, top_k_projection

    neurons = {m.path: m.shape[m.inferred.index(0)] for m in dims.modules if m.inferred and m.shape}
    found = sizes(inspection.perforated, neurons)
    order = {m.path: i for i, m in enumerate(dims.modules)}
    ordered = sorted(found, key=lambda m: order.get(m.path, len(order)))
    return {
        "base_params": base,
        "dendrites": projection(base, found, max_dendrites),
        "top_k": top_k_projection(base, ordered, max_dendrites),
    }


def run_check(cfg: Any, out_dir: str | Path, capacity_test: bool = True, capacity_batches: int | None = None) -> CheckResult:
    """Check the integration `cfg` describes; write out_dir/check.json. Never raises for a broken integration.

    capacity_batches: batches per capacity-test epoch (default 4, as preflight).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    warm = False
    if capacity_test:
        from pai_sweep.preflight import warm_up

        warm = warm_up(cfg)  # the warm worker server boots now (torch, perforatedai), for the capacity test's fork
    if warm:
        # The static checks fork from the same server: this process never imports torch, scikit-learn or the
        # model's code (on 2 cores those imports competed with the server's for seconds).
        from pai_sweep.launchers.warm import call_warm

        try:
            result = call_warm(static_checks, cfg)
        except RuntimeError as exc:  # the child died (a crash in the model's code) or hung: a verdict, not a crash
            result = CheckResult(ok=False, verdict="", problems=[f"the static checks did not finish: {exc}"])
    else:
        result = static_checks(cfg)
    if capacity_test and not result.problems:
        from pai_sweep.check.capacity import run_capacity_test

        report = run_capacity_test(cfg, out_dir / "capacity_test", batches=capacity_batches or 4)
        result.capacity = report.to_dict()
        if not report.ok:
            why = f" ({report.diagnosis['cause']}: {report.diagnosis['fix']})" if report.diagnosis else ""
            result.problems.append(f"capacity test failed: {report.reason}{why}; log: {report.folder}/worker.log")
    result.ok = not result.problems
    result.verdict = verdict_text(result, capacity_test)
    result.path = str(out_dir / CHECK_JSON)
    write_json(out_dir / CHECK_JSON, result.to_dict())
    return result


def static_checks(cfg: Any) -> CheckResult:
    """Everything the check finds without training (model, dims, knobs, direction, device, loop, cost); a broken
    integration is a problem in the result, never an exception."""
    result = CheckResult(ok=False, verdict="")
    try:
        _static_checks(cfg, result)
    except PaiSweepError as exc:
        result.problems.append(" ".join(str(exc).split()))
    except Exception as exc:  # noqa: BLE001 - the user's model failing on a sample batch is a verdict, not a crash
        result.problems.append(f"the model failed on one sample batch of the data ({type(exc).__name__}: "
                               f"{' '.join(str(exc).split())[:300]}): check model and data shapes")
    return result


def _static_checks(cfg: Any, result: CheckResult) -> None:
    from pai_sweep.check.auto import build_for_check, derive, fitting_preset
    from pai_sweep.check.inspect import check_dims, inspect_model
    from pai_sweep.check.plan import plan_model
    from pai_sweep.schema.knobs import check_knobs

    model, sample, data = build_for_check(cfg)
    dendrites = cfg.dendrites
    if dendrites.preset == "auto":
        dendrites, why = derive(model, sample, dendrites)
        result.notes.append(why)
    result.dendrites = OmegaConf.to_container(OmegaConf.create(dendrites), resolve=True) if not isinstance(dendrites, dict) else dict(dendrites)
    result.preset, result.preset_reason = fitting_preset(model, sample)
    found = inspect_model(model, dendrites)
    dims = check_dims(model, found.perforated, dendrites, sample)
    result.inspection, result.dims = found.to_dict(), dims.to_dict()
    result.problems += found.problems + [m.message() for m in dims.problems]
    result.notes += found.notes + [m.message() for m in dims.warnings]
    try:
        check_knobs(dendrites)
        plan = plan_model(model, dendrites)
        auto = plan.track_names[len(list(dendrites.module_names_to_track)):] + plan.track_params
        if auto:
            shown = ", ".join(auto[:4]) + (f" and {len(auto) - 4} more" if len(auto) > 4 else "")
            result.notes.append(f"pai-sweep tracks these automatically (no pdb trap): {shown}")
    except PaiSweepError as exc:
        result.problems.append(" ".join(str(exc).split()))
    train = OmegaConf.to_container(cfg.train, resolve=True)
    result.problems += direction_problems(dendrites, train, data.task)
    device_issues, device = device_problems(train)
    result.problems += device_issues
    result.notes.append(f"device {device}: PerforatedAI reloads every checkpoint onto it (set from train.device)")
    loop = loop_problems(train.get("train_fn"))
    result.problems += loop
    if not loop:
        who = f"train.train_fn={train['train_fn']} takes" if train.get("train_fn") else "pai-sweep's loop takes"
        result.notes.append(f"restructuring: {who} the new model and a rebuilt optimizer/scheduler after every restructure")
    result.cost = _cost(found, dims, found.total_params, max(int(dendrites.max_dendrites), 3))
    if result.preset != "custom" and dendrites.preset not in (result.preset, "auto", "custom"):
        result.notes.append(f"dendrites={dendrites.preset} is configured; dendrites={result.preset} fits this model ({result.preset_reason})")


def verdict_text(result: CheckResult, capacity_test: bool) -> str:
    lines = []
    if result.ok:
        lines.append("OK: the integration can work as configured.")
    else:
        lines.append(f"FAILED: {len(result.problems)} problem(s) stop this integration:")
        lines += [f"  - {p}" for p in result.problems]
        if (result.dims or {}).get("problems"):
            better = f"dendrites={result.preset} or " if result.preset not in ("", "custom") else ""
            lines.append(f"  fix for the dims: {better}dendrites=auto (per-module dims from the model), or the values named above")
    if result.preset:
        lines.append(f"preset that fits: {result.preset_reason}")
    insp = result.inspection
    if insp:
        lines.append(
            f"perforated {len(insp['perforated'])} modules ({insp['perforated_params']:,} of {insp['total_params']:,} params), "
            f"tracked {len(insp['tracked'])}, unwrapped params {len(insp['unwrapped_params'])}"
        )
    rows = (result.cost or {}).get("dendrites") or []
    if rows:
        lines.append("params by dendrites: " + ", ".join(f"{r['dendrites']}: {r['params']:,}" for r in rows))
    top = (result.cost or {}).get("top_k") or []
    if len(top) > 1:
        lines.append("with 1 dendrite, perforating only the top k modules: " + ", ".join(f"k={r['k']}: {r['params'][0]:,}" for r in top[:4])
                     + (f", ... all {len(top)}: {top[-1]['params'][0]:,}" if len(top) > 4 else ""))
    cap = result.capacity
    if cap:
        secs = cap.get("seconds_by_dendrites") or {}
        mem = cap.get("peak_memory_mb")
        lines.append(
            f"capacity test: {cap['reason']}; epoch s at 0/3 dendrites: {secs.get(0, '?')}/{secs.get(3, '?')}"
            + (f"; peak memory {mem} MB ({cap['memory_kind']})" if mem is not None else "")
        )
    elif not capacity_test:
        lines.append("capacity test: skipped (--no-capacity-test)")
    elif not result.ok:
        lines.append("capacity test: not run (fix the problems above first)")
    lines += [f"note: {n}" for n in result.notes]
    return "\n".join(lines)
