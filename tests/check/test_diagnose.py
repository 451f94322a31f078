"""Each known perforatedai failure, produced for real in a subprocess, gets the setup guide's diagnosis."""

from __future__ import annotations

import bdb

import pytest

from pai_sweep.check import diagnose

# case -> (exit code the library ends with, diagnosed cause, a text the diagnosis must name)
EXPECTED = {
    "dims": (0, "output_dimensions_mismatch", "'+dendrites.output_dimension_overrides={head:[-1,0]}'"),
    "unwrapped": (1, "unwrapped_parameters", ".embed.weight"),
    "norm": (1, "unwrapped_norm_layer", ".bn"),
    "knob": (0, "unknown_setting", "n_epochs_for_switch_history"),
    "dataparallel": (1, "dataparallel_or_module_attribute", "model.module"),
    "no_gradient": (1, "module_without_gradient", "module_ids_to_track=[.spare]"),
    "switch_mode": (1, "bad_switch_mode", "dendrites.switch_mode"),
    "score": (1, "non_numeric_score", "float(acc)"),
    "reload": (1, "state_dict_mismatch", "pai_modules"),
}


@pytest.mark.parametrize("case", sorted(EXPECTED))
def test_real_failure_is_diagnosed(case, crash_logs):
    code, log = crash_logs[case]
    want_code, cause, named = EXPECTED[case]
    assert "CASE FINISHED WITHOUT A TRAP" not in log or case == "knob", log[-2000:]
    assert code == want_code, log[-2000:]
    found = diagnose(log)
    assert found is not None, log[-2000:]
    assert found.cause == cause, (found, log[-2000:])
    assert named in f"{found.explanation} {found.fix} {found.evidence}"


def test_pdb_traps_end_in_bdbquit(crash_logs):
    # stdin closed: every pdb trap quits with BdbQuit instead of waiting for a key
    for case in ("unwrapped", "norm", "dataparallel", "no_gradient", "switch_mode", "reload"):
        assert "bdb.BdbQuit" in crash_logs[case][1], case


def test_three_axis_mismatch_names_the_conv1d_dims_too():
    log = "Module has not properly set this_output_dimensions\n.features.0\nit is expecting:\ntensor([-1, -1,  0])\nbut received\ntorch.Size([64, 8, 40])\n"
    fix = diagnose(log, SystemExit(0)).fix
    assert "{features.0:[-1,-1,0]}" in fix and "{features.0:[-1,0,-1]}' if it is a Conv1d" in fix


def test_earliest_signature_wins():
    log = (
        "potentially found a norm Layer that is not accounted for, this is not recommended: .bn\n"
        "The following params are not tracked or wrapped.\n.bn.weight\nbdb.BdbQuit\n"
    )
    assert diagnose(log).cause == "unwrapped_norm_layer"


def test_generic_pdb_trap_and_silent_exit():
    assert diagnose("some line\n", bdb.BdbQuit()).cause == "pdb_trap"
    assert diagnose("training...\n", SystemExit(0)).cause == "silent_exit"
    assert diagnose("all fine\n") is None
    assert diagnose("", ValueError("boom")) is None


def test_diagnosis_is_one_actionable_line():
    found = diagnose("Variable 'max_dendrite' does not exist.  Ignoring set attempt.\n")
    text = str(found)
    assert "\n" not in text and text.startswith("unknown_setting:") and "Fix:" in text
