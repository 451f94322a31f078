"""The names of PerforatedAI 3.2.9's settings (GPA.pc.set_<name>) and which of them a run may set where.

Plain data (no torch, no perforatedai): validate checks `dendrites.extra` against it at compose time
(check_knobs), and the adapter configures and reads back the tuned ones (and checks the names against
the installed library's own list).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Iterable

from pai_sweep.errors import IntegrationError, close_names
from pai_sweep.schema.dendrites import DendritesConfig

# Every GPA.pc.set_<name> of perforatedai 3.2.9 (tests check this against the installed library).
KNOWN_KNOBS = frozenset(
    """candidate_weight_init_by_main candidate_weight_initialization_multiplier checked_skipped_modules
    config_file configuration_confirmed confirm_correct_sizes d_type dashboard_debug dashboard_events_enabled
    dashboard_url debugging_output_dimensions device dont_give_up_unless_learning_rate_lowered
    drawing_extra_graphs drawing_pai extra_verbose find_best_lr first_fixed_switch_num fixed_switch_num
    global_candidates history_lookback improvement_threshold improvement_threshold_raw
    initial_history_after_switches learn_dendrites_live library_extra_scores
    library_extra_scores_without_graphing library_validation_score max_dendrite_tries max_dendrites
    maximizing_score module_by_name_processing_classes module_ids_to_perforate module_ids_to_track
    module_names_to_not_save module_names_to_perforate module_names_to_track module_names_with_processing
    modules_processing_classes modules_to_perforate modules_to_replace modules_to_track modules_with_processing
    n_epochs_to_switch no_extra_n_modes output_dimensions pai_forward_function pai_saves param_vals_setting
    parameter_ids_to_track perforated_backpropagation replacement_modules reset_best_score_on_switch
    retain_all_dendrites save_name save_old_graph_scores silent strict_loading switch_mode test_saves
    testing_dendrite_capacity unwrapped_modules_confirmed use_cuda using_safe_tensors verbose
    weight_decay_accepted weight_tying_experimental""".split()
)

# Knobs pai-sweep sets itself on every run: a value in dendrites.extra would re-open a trap.
RESERVED_KNOBS = {
    "configuration_confirmed": "pai-sweep confirms the configuration (False opens an interactive UI)",
    "unwrapped_modules_confirmed": "pai-sweep tracks loose parameters itself (False stops in pdb)",
    "checked_skipped_modules": "pai-sweep checks skipped modules itself (False stops in pdb)",
    "testing_dendrite_capacity": "the capacity test is `pai-sweep check` (preflight), not a training run",
    "save_name": "the trial folder's pai/ is fixed",
    "config_file": "each trial starts from a fresh folder and the config in code",
    "device": "set train.device",
    "use_cuda": "set train.device",
    "test_saves": "set train.test_saves",
    "drawing_pai": "False crashes the library's plotting code",
    "debugging_output_dimensions": "pai-sweep checks output dimensions before training",
}

# The dendrites group has a field for these: use the field, not dendrites.extra.
FIELD_KNOBS = tuple(
    f.name for f in dataclasses.fields(DendritesConfig) if f.name in KNOWN_KNOBS
)

# The knobs a sweep tunes (fields of the group, not the module choices): read back after configuring (applied_knobs).
TUNED_KNOBS = tuple(k for k in FIELD_KNOBS if not k.startswith(("module_", "output_dimension")))


def check_knobs(dendrites_cfg: Any) -> None:
    """Raise IntegrationError for a `dendrites.extra` name PerforatedAI 3.2.9 does not have (KNOWN_KNOBS), or one
    pai-sweep owns. `dendrites_cfg`: the group (DictConfig, dict or dataclass); cheap: validate runs it, once per config."""
    extra = dendrites_cfg.get("extra") if hasattr(dendrites_cfg, "get") else getattr(dendrites_cfg, "extra", None)
    check_names(extra or {}, KNOWN_KNOBS)


def check_names(names: Iterable[str], known: Iterable[str]) -> None:
    """Each `dendrites.extra` name must be in `known` (the adapter passes the installed library's list), and
    neither reserved nor a field of the group."""
    for name in names:
        if name not in known:
            raise IntegrationError(
                f"dendrites.extra.{name} is not a PerforatedAI setting{close_names(name, known)}; "
                f"perforatedai silently ignores unknown names, so fix or remove it"
            )
        if name in RESERVED_KNOBS:
            raise IntegrationError(f"dendrites.extra.{name} cannot be set: {RESERVED_KNOBS[name]}")
        if name in FIELD_KNOBS:
            raise IntegrationError(f"dendrites.extra.{name}: use dendrites.{name} instead (it is a field of the group)")
