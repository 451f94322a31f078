"""Apply a DendritesConfig to PerforatedAI 3.2.9 safely. The only module that imports perforatedai.

Every trap in reference/perforatedai.md has its prevention here or in the model planning it calls
first (check/plan.py, torch only, shared with `pai-sweep check`):
- configuration_confirmed / unwrapped_modules_confirmed / checked_skipped_modules set, so the
  library never opens its terminal UI or stops in pdb over skipped modules;
- parameters outside perforated and tracked modules are tracked (norm and embedding layers by
  class name, any other loose parameter by id) and said so in the log (plan_model);
- a `module` attribute (DataParallel) is refused before the library sees it (plan_model);
- output_dimensions are checked on one example batch before perforating, because a mismatch
  makes the library call sys.exit(0) on the first backward pass (check_output_dimensions);
- unknown `dendrites.extra` knob names raise (3.2.9 ignores them with a print; names in schema/knobs.py);
- the save name is sanitised, the device set explicitly, the mha fast path disabled for
  transformers (it skips the dendrites of TransformerEncoderLayer under no_grad).

Importing this module is cheap (torch and perforatedai are imported on first use). The static check of
the `dendrites.extra` names (schema/knobs.py check_knobs) runs at compose time, without this module.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from pai_sweep.errors import ConfigError, IntegrationError
from pai_sweep.reads import Reads
from pai_sweep.schema.dendrites import SWITCH_MODES, DendritesSpec, dendrites_config
from pai_sweep.schema.knobs import TUNED_KNOBS, check_names

if TYPE_CHECKING:
    from torch import nn

    from pai_sweep.check.plan import ModelPlan

SAVE_NAME = "pai"

# Each of SWITCH_MODES (history, fixed, no_switch, every_time, in that order) as GPA.pc's constant.
SWITCH_CONSTANTS = dict(zip(SWITCH_MODES, ("DOING_HISTORY", "DOING_FIXED_SWITCH", "DOING_NO_SWITCH", "DOING_SWITCH_EVERY_TIME")))

# The switch timing each mode reads (perforatedai 3.2.9's tracker): history adds dendrites after
# n_epochs_to_switch epochs without improvement, fixed every fixed_switch_num epochs (the first at
# first_fixed_switch_num); no_switch never switches, every_time switches each epoch.
SWITCH_TIMING = dict(zip(SWITCH_MODES, (("n_epochs_to_switch",), ("fixed_switch_num", "first_fixed_switch_num"), (), ())))
SWITCH_READS = Reads(
    selector="dendrites.switch_mode",
    choices=SWITCH_MODES,
    governs=lambda field: field in {f"dendrites.{k}" for timing in SWITCH_TIMING.values() for k in timing},
    # dendrites off: the plain loop's patience is n_epochs_to_switch (the worker's ENABLED_READS decides the rest)
    acts=lambda field, cfg: not cfg.dendrites.enabled or field.split(".", 1)[1] in SWITCH_TIMING.get(cfg.dendrites.switch_mode, ()),
)

# The score names the worker adds; the best-architecture table lists them after the validation score.
TRAIN_SCORE = "Train"
TEST_SCORE = "Test"


def live_knobs() -> frozenset[str]:
    """The knob names of the installed perforatedai (its config answers any set_<name>, so list the class)."""
    gpa, _ = _pai()
    return frozenset(n[4:] for n in dir(gpa.pc) if n.startswith("set_"))


def _pai():
    # Imported on first use: perforatedai prints a line and pulls in torch and matplotlib.
    from perforatedai import globals_perforatedai as GPA
    from perforatedai import utils_perforatedai as UPA

    return GPA, UPA


# ---------------------------------------------------------------- configuring and perforating


def sanitise_save_name(name: str) -> str:
    """'/' makes the library sys.exit(1); other odd characters it rewrites itself."""
    clean = re.sub(r"[^A-Za-z0-9_.-]+", "_", str(name)).strip("._")
    return clean or SAVE_NAME


def _configure(d: DendritesSpec, plan: ModelPlan, device: Any, test_saves: bool, capacity_test: bool) -> None:
    GPA, _ = _pai()
    pc = GPA.pc
    if d.extra:  # validate checked the names against KNOWN_KNOBS; this is the installed library's own list
        check_names(d.extra, live_knobs())
    # The traps first: no UI, no pdb over skipped modules, no 3-dendrite smoke test in real runs.
    pc.set_configuration_confirmed(True)
    pc.set_unwrapped_modules_confirmed(True)
    pc.set_checked_skipped_modules(True)
    pc.set_testing_dendrite_capacity(bool(capacity_test))
    pc.set_device(device)
    pc.set_test_saves(bool(test_saves))
    pc.set_drawing_pai(True)  # False crashes the plotting code with an IndexError
    # What to perforate and track.
    pc.set_module_names_to_perforate(list(d.module_names_to_perforate))
    pc.set_module_ids_to_perforate(list(d.module_ids_to_perforate))
    pc.set_module_names_to_track(list(plan.track_names))
    pc.set_module_ids_to_track(list(d.module_ids_to_track))
    pc.set_parameter_ids_to_track(list(plan.track_params))
    pc.set_output_dimensions([int(v) for v in d.output_dimensions])
    # The knobs a sweep tunes.
    pc.set_max_dendrites(int(d.max_dendrites))
    pc.set_improvement_threshold([float(v) for v in d.improvement_threshold])  # the per-dendrite list (threshold_schedule)
    pc.set_improvement_threshold_raw(float(d.improvement_threshold_raw))
    pc.set_candidate_weight_initialization_multiplier(float(d.candidate_weight_initialization_multiplier))
    if d.switch_mode not in SWITCH_CONSTANTS:
        raise ConfigError(f"dendrites.switch_mode={d.switch_mode!r} is not known; valid values: {', '.join(SWITCH_MODES)}")
    pc.set_switch_mode(getattr(pc, SWITCH_CONSTANTS[d.switch_mode]))
    pc.set_n_epochs_to_switch(int(d.n_epochs_to_switch))
    pc.set_history_lookback(int(d.history_lookback))
    pc.set_initial_history_after_switches(int(d.initial_history_after_switches))
    pc.set_fixed_switch_num(int(d.fixed_switch_num))
    pc.set_first_fixed_switch_num(int(d.first_fixed_switch_num))
    pc.set_max_dendrite_tries(int(d.max_dendrite_tries))
    pc.set_retain_all_dendrites(bool(d.retain_all_dendrites))
    pc.set_find_best_lr(bool(d.find_best_lr))
    pc.set_maximizing_score(bool(d.maximizing_score))
    for name, value in d.extra.items():
        getattr(pc, f"set_{name}")(value)


def applied_knobs(d: DendritesSpec) -> dict[str, Any]:
    """The tuned knobs and `extra` as PerforatedAI holds them now (its GPA.pc getters; switch_mode by name)."""
    GPA, _ = _pai()
    pc = GPA.pc
    out: dict[str, Any] = {}
    for name in (*TUNED_KNOBS, *d.extra):
        value = getattr(pc, f"get_{name}")()
        stored = getattr(pc, f"_{name}", None)  # a per-dendrite schedule: the getter gives the current step, keep the list
        if isinstance(stored, list):
            value = list(stored)
        if name == "switch_mode":
            value = next((mode for mode, attr in SWITCH_CONSTANTS.items() if getattr(pc, attr) == value), value)
        elif hasattr(value, "tolist"):  # a tensor or numpy value
            value = value.tolist()
        elif isinstance(value, tuple):
            value = list(value)
        out[name] = value
    return out


@dataclass
class Perforated:
    """The perforated model and what was done to get it (for the log and result.json)."""

    model: Any
    plan: ModelPlan
    graphs: str
    knobs: dict[str, Any] = field(default_factory=dict)  # applied_knobs() after perforate_model


def perforate(
    model: "nn.Module",
    dendrites_cfg: Any,
    *,
    device: Any = "cpu",
    example_input: Any = None,
    save_name: str = SAVE_NAME,
    graphs: str = "end",
    test_saves: bool = True,
    capacity_test: bool = False,
    log: Callable[[str], None] = print,
) -> Perforated:
    """Configure GPA.pc from the dendrites config and perforate `model` (in the current working directory).

    Call once per process, in a fresh folder: the library keeps global state and re-reads
    ./<save_name>/<save_name>_config.json. With example_input (one batch) the output
    dimensions are checked before the library sees the model.
    """
    # torch and the model planning (which imports torch) on first use: importing the adapter stays cheap
    import torch

    from pai_sweep.check.plan import check_output_dimensions, override_dims, plan_model

    d = dendrites_config(dendrites_cfg)
    if graphs not in ("end", "every_epoch"):
        raise ConfigError(f"train.graphs={graphs!r} is not known; valid values: end, every_epoch")
    plan = plan_model(model, d)
    if example_input is not None:
        check_output_dimensions(model, plan, d, example_input)
    for note in plan.notes:
        log(f"pai-sweep: {note}")
    if plan.transformer:
        # The fast path reads raw linear weights under no_grad and skips the dendrites.
        torch.backends.mha.set_fastpath_enabled(False)
        log("pai-sweep: attention layers found: torch.backends.mha fast path disabled")
    device = torch.device(device)
    _configure(d, plan, device, test_saves, capacity_test)
    GPA, UPA = _pai()
    model = UPA.perforate_model(model, save_name=sanitise_save_name(save_name), maximizing_score=bool(d.maximizing_score))
    for path, dims in override_dims(d).items():
        model.get_submodule(path.lstrip(".")).set_this_output_dimensions(list(dims))
    model = model.to(device)
    if graphs == "end":
        stub_plots()
    return Perforated(model=model, plan=plan, graphs=graphs, knobs=applied_knobs(d))


# ---------------------------------------------------------------- the tracker


def setup_optimizer(model: "nn.Module", opt_cls: type, opt_args: dict, sched_cls: type | None, sched_args: dict | None):
    """(optimizer, scheduler) through the tracker, from deep copies of the same args every time."""
    GPA, _ = _pai()
    tracker = GPA.pai_tracker
    tracker.set_optimizer(opt_cls)
    if sched_cls is not None:
        tracker.set_scheduler(sched_cls)
    args = {"params": model.parameters(), **copy.deepcopy(dict(opt_args))}
    return tracker.setup_optimizer(model, args, copy.deepcopy(dict(sched_args or {})) if sched_cls is not None else None)


def add_scores(model: "nn.Module", val: float, train: float | None = None, test: float | None = None):
    """Extra scores first, then the validation score. Returns (model, restructured, complete) as bools."""
    GPA, _ = _pai()
    tracker = GPA.pai_tracker
    if train is not None:
        tracker.add_extra_score(float(train), TRAIN_SCORE)
    if test is not None:
        tracker.add_extra_score(float(test), TEST_SCORE)
    model, restructured, complete = tracker.add_validation_score(float(val), model)
    # restructured is 0/1 on normal epochs and a bool on completion paths
    return model, bool(restructured), bool(complete)


def dendrite_count() -> int:
    GPA, _ = _pai()
    try:
        return int(GPA.pai_tracker.member_vars["num_dendrites_added"])
    except (AttributeError, KeyError, TypeError):
        return 0


def count_params(model: "nn.Module") -> int:
    _, UPA = _pai()
    return int(UPA.count_params(model))


# ---------------------------------------------------------------- resume points (3.2.9 has no resume API)

RESUME_NAME = "resume"
# What load_system resets or does not restore; saved beside the model and put back after loading.
_TRACKER_KEYS = ("current_best_validation_score", "epoch_last_improved", "current_step_count")


def resume_name(epoch: int) -> str:
    """Resume points alternate between two names (resume0, resume1): save_system is not atomic, so a kill while it
    writes one leaves the other, the one the last complete sidecar names, intact."""
    return f"{RESUME_NAME}{int(epoch) % 2}"


def save_resume_point(model: "nn.Module", folder: str = SAVE_NAME, name: str = RESUME_NAME) -> dict:
    """Save model + tracker history (UPA.save_system) and return the tracker values load_system loses."""
    GPA, UPA = _pai()
    UPA.save_system(model, folder, name)
    state = {k: copy.deepcopy(GPA.pai_tracker.member_vars.get(k)) for k in _TRACKER_KEYS}
    state["total_epochs_run"] = GPA.pai_tracker.member_vars.get("total_epochs_run")
    state["name"] = name
    return state


def load_resume_point(model: "nn.Module", state: dict, folder: str = SAVE_NAME) -> "nn.Module":
    """Rebuild dendrites and tracker from the last resume point; IntegrationError if it is not the one `state` describes."""
    GPA, UPA = _pai()
    loaded = UPA.load_system(model, folder, state.get("name", RESUME_NAME), load_from_manual_save=True)
    model = loaded if loaded is not None else model
    epochs = GPA.pai_tracker.member_vars.get("total_epochs_run")
    if epochs != state.get("total_epochs_run"):
        # killed between the model save and the sidecar write: the two do not belong together
        raise IntegrationError(f"resume point holds epoch {epochs} but its sidecar {state.get('total_epochs_run')}")
    for key in _TRACKER_KEYS:
        GPA.pai_tracker.member_vars[key] = state[key]
    return model


# ---------------------------------------------------------------- graphs


class _NullPlot:
    """Stands in for matplotlib.pyplot inside the tracker module: every call does nothing."""

    def __getattr__(self, name: str) -> "_NullPlot":
        return self

    def __call__(self, *args: Any, **kwargs: Any) -> "_NullPlot":
        return self

    def __iter__(self):
        return iter(())


_REAL_PLT: Any = None
_REAL_SAVE_GRAPHS: Any = None
_REAL_SAVE_SYSTEM: Any = None
# Checkpoints the library writes and never reads back: `latest` every epoch (with test_saves) and
# `beforeSwitch_<k>` at each switch. What it reads back is still written: best_model (each new best),
# switch_<k> (every restructure) and the PBCount_* points of its learning-rate search (test_saves);
# resume points are pai-sweep's own (resume0/resume1, branch: training.PAISession).
UNREAD_CHECKPOINTS = re.compile(r"^(latest|beforeSwitch_\d+)$")
_SWITCH_CHECKPOINT = re.compile(r"^switch_(\d+)$")


def read_back_files(folder: Path, exclude: tuple[str, ...] = ()) -> tuple[Path, ...]:
    """What a run continued from this save folder needs of it: the checkpoints the library reads back (best_model, the
    newest switch_<k>: it reloads switch_{len(switch_epochs)}, and its learning-rate search's PBCount_* points) and
    its own output so far (the CSVs and graphs it copied at each switch). Older switch_<k> and the copies of models it
    never reads stay behind (a start point holds them once, not once per switch)."""
    files = [p for p in sorted(Path(folder).iterdir()) if p.is_file() and p.name not in exclude]
    models = [p for p in files if p.suffix == ".pt"]
    switches = sorted((int(m.group(1)), p) for p in models if (m := _SWITCH_CHECKPOINT.match(p.stem)))
    keep = [p for p in files if p.suffix != ".pt"]
    keep += [p for p in models if p.stem == "best_model" or "PBCount" in p.stem]
    keep += [switches[-1][1]] if switches else []
    return tuple(sorted(keep))


def _deferred_save_graphs(self: Any, extra_string: str = "") -> Any:
    if extra_string == "":
        return None  # the running graph and CSVs: written once, by finish_graphs()
    return _REAL_SAVE_GRAPHS(self, extra_string)  # snapshots (_beforeSwitch_k, _noImprove_lr_, ...) when they happen


def _needed_saves_only(net: Any, folder: Any, name: Any) -> Any:
    if UNREAD_CHECKPOINTS.match(str(name)):
        return None
    return _REAL_SAVE_SYSTEM(net, folder, name)


def stub_plots() -> None:
    """Per epoch, write only what something reads (train.graphs=end); finish_graphs() writes the rest once.

    - The tracker's drawing is a no-op (~0.5 s per epoch for its 28x14-inch PNG): the private
      module-level name `plt` of perforatedai 3.2.9's tracker module is replaced.
    - Its per-epoch `save_graphs()` (the running CSVs, rewritten from the whole history every epoch
      with pandas) is deferred to the end; the snapshots it takes at switches and failed tries
      (`save_graphs(<suffix>)`) are still written when they happen.
    - Checkpoints nothing reads (UNREAD_CHECKPOINTS) are not written.
    Training is unchanged (the skipped calls only write files the library never reads back) and the
    CSVs at the end are byte-identical to the library default's (Times.csv aside: wall-clock seconds);
    tests/test_worker.py compares them. Relies on private names of perforatedai 3.2.9 (pinned).
    """
    global _REAL_PLT, _REAL_SAVE_GRAPHS, _REAL_SAVE_SYSTEM
    from perforatedai import tracker_perforatedai as TPA
    from perforatedai import utils_perforatedai as UPA

    if _REAL_PLT is None:
        _REAL_PLT = TPA.plt
    TPA.plt = _NullPlot()
    if _REAL_SAVE_GRAPHS is None:
        _REAL_SAVE_GRAPHS = TPA.PAINeuronModuleTracker.save_graphs
        TPA.PAINeuronModuleTracker.save_graphs = _deferred_save_graphs
    if _REAL_SAVE_SYSTEM is None:
        _REAL_SAVE_SYSTEM = UPA.save_system
        UPA.save_system = _needed_saves_only


def finish_graphs(draw: bool = True) -> None:
    """Put the library back and let the tracker write its CSVs (and, with draw, its PNG) once, from the final state."""
    global _REAL_PLT, _REAL_SAVE_GRAPHS, _REAL_SAVE_SYSTEM
    if _REAL_PLT is None:
        return
    from perforatedai import tracker_perforatedai as TPA
    from perforatedai import utils_perforatedai as UPA

    if _REAL_SAVE_GRAPHS is not None:
        TPA.PAINeuronModuleTracker.save_graphs, _REAL_SAVE_GRAPHS = _REAL_SAVE_GRAPHS, None
    if _REAL_SAVE_SYSTEM is not None:
        UPA.save_system, _REAL_SAVE_SYSTEM = _REAL_SAVE_SYSTEM, None
    if draw:
        TPA.plt, _REAL_PLT = _REAL_PLT, None
    _save_graphs_clamped()


def write_graphs() -> None:
    """The tracker's CSVs and PNG from its current state, with the library's own per-epoch writing on
    (train.graphs=every_epoch) but no epoch run to write them (a trial started from a run the cap ended)."""
    if _REAL_PLT is None:
        _save_graphs_clamped()


def _save_graphs_clamped() -> None:
    GPA, _ = _pai()
    mv = GPA.pai_tracker.member_vars
    # After the epoch cap or a final reload, 3.2.9's tracker can hold an epoch_last_improved past the end of its
    # (rolled back) score history; its plotting indexes the scores with it before it writes Scores.csv and the
    # other CSVs, so one IndexError would lose every running CSV. Clamp it for this one call, then restore it.
    kept = mv.get("epoch_last_improved")
    lengths = [len(mv[k]) for k in ("accuracies", "n_accuracies") if isinstance(mv.get(k), list) and mv[k]]
    if isinstance(kept, int) and lengths and kept >= min(lengths):
        mv["epoch_last_improved"] = min(lengths) - 1
    try:
        GPA.pai_tracker.save_graphs()
    finally:
        mv["epoch_last_improved"] = kept
