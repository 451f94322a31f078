"""The run spec (issue 14, item 1): run.yaml read once into typed dataclasses and checked once in the worker;
improvement_threshold one typed list; the switch modes and the run groups listed once."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml
from omegaconf import OmegaConf

from pai_sweep import branching, perforate, worker
from pai_sweep.analysis import context
from pai_sweep.compose import compose
from pai_sweep.errors import ConfigError
from pai_sweep.schema import RUN_GROUPS, Config, DendritesConfig, DendritesSpec, RunSpec
from pai_sweep.schema.dendrites import SWITCH_MODES, threshold_schedule
from pai_sweep.schema.run import run_dict

ROOT = Path(__file__).resolve().parents[1]

# Runs one hand-written trial with run_trial in this (child) process and counts the checks and conversions.
COUNTING_WORKER = textwrap.dedent("""
    import json, sys
    from pai_sweep import perforate, validate, worker
    from pai_sweep.schema import knobs
    from pai_sweep.schema.dendrites import DendritesSpec

    counts = {"validate_run": 0, "check_knobs": 0, "live_knobs": 0, "dendrites_converted": 0}

    def counting(module, name, key):
        real = getattr(module, name)
        def wrapper(*args, **kwargs):
            counts[key] += 1
            return real(*args, **kwargs)
        setattr(module, name, wrapper)

    counting(validate, "validate_run", "validate_run")
    counting(knobs, "check_knobs", "check_knobs")
    counting(perforate, "live_knobs", "live_knobs")
    real_config = perforate.dendrites_config
    def config(cfg):
        counts["dendrites_converted"] += not isinstance(cfg, DendritesSpec)  # built again from a dict or DictConfig
        return real_config(cfg)
    perforate.dendrites_config = config
    result = worker.run_trial(sys.argv[1], max_batches=2)
    print("COUNTS " + json.dumps({"counts": counts, "status": result.status, "reason": result.reason,
                                   "knobs": result.built.get("knobs", {})}), flush=True)
""")

HAND_WRITTEN = {
    "model": {"name": "mlp", "hidden": [8]},
    "data": {"limit": 120},
    "dendrites": {"module_names_to_perforate": ["Linear"], "output_dimensions": [-1, 0], "switch_mode": "every_time",
                  "max_dendrites": 1, "improvement_threshold": 0.0, "extra": {"verbose": False}},
    "train": {"max_epochs": 2, "test_saves": False},
}


def test_a_worker_reads_and_checks_a_hand_written_run_yaml_once(tmp_path):
    trial = tmp_path / "t"
    trial.mkdir()
    (trial / "run.yaml").write_text(yaml.safe_dump(HAND_WRITTEN))
    proc = subprocess.run([sys.executable, "-c", COUNTING_WORKER, str(trial)], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    line = next((x for x in proc.stdout.splitlines() if x.startswith("COUNTS ")), None)
    assert line is not None, proc.stdout[-2000:] + proc.stderr[-2000:]
    out = json.loads(line[len("COUNTS "):])
    assert out["status"] == "complete", out["reason"]
    # one full validation, one static knob-name check (inside it), the typed group used as loaded (never built
    # again); the installed library's knob list is read once, for the `extra` names, when PerforatedAI is configured
    assert out["counts"] == {"validate_run": 1, "check_knobs": 1, "live_knobs": 1, "dendrites_converted": 0}
    # the scalar a user wrote reaches PerforatedAI as the one-entry list (the same threshold at every dendrite count)
    assert out["knobs"]["improvement_threshold"] == [0.0]


def test_a_hand_written_run_yaml_is_still_checked(tmp_path):
    for dendrites, words in (({"switch_mode": "sometimes"}, "dendrites.switch_mode='sometimes' is not known"),
                             ({"improvement_threshold": [0.1, -1]}, "must be a number >= 0"),
                             ({"extra": {"max_dendrite": 2}}, "dendrites.extra.max_dendrite is not a PerforatedAI setting"),
                             ({"no_such_knob": 1}, "no_such_knob")):
        (tmp_path / "run.yaml").write_text(yaml.safe_dump({"dendrites": dendrites}))
        with pytest.raises(Exception, match=words.replace("[", r"\[").replace(".", r"\.")):
            worker.load_run_spec(tmp_path)
    (tmp_path / "run.yaml").write_text(yaml.safe_dump({"train": {"max_epochs": 2}}))
    spec = worker.load_run_spec(tmp_path)
    assert isinstance(spec, RunSpec) and isinstance(spec.dendrites, DendritesSpec) and spec.train.max_epochs == 2
    assert spec.dendrites.improvement_threshold == [0.001, 0.0001, 0.0]


def test_the_driver_writes_the_spec_the_worker_reads(tmp_path):
    cfg = compose(["dendrites.improvement_threshold=0.01", "model=small_cnn"])  # a scalar is accepted at compose time
    assert cfg.dendrites.improvement_threshold == 0.01
    written = run_dict(cfg)
    assert list(written) == list(RUN_GROUPS) and written["dendrites"]["improvement_threshold"] == [0.01]
    (tmp_path / "run.yaml").write_text(OmegaConf.to_yaml(OmegaConf.create(written)))
    spec = worker.load_run_spec(tmp_path)
    assert spec.to_dict() == written  # what the worker signs (branch points) is what the driver wrote
    # the scalar form (a run.yaml written before, or by hand) reads as the same spec and the same branch prefix
    scalar = json.loads(json.dumps(written))
    scalar["dendrites"]["improvement_threshold"] = 0.01
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(scalar))
    assert worker.load_run_spec(tmp_path, check=False).to_dict() == written
    assert branching.prefix_signature(scalar) == branching.prefix_signature(written)


def test_threshold_schedule_is_the_one_parser():
    assert threshold_schedule(0) == [0.0] and threshold_schedule("1e-3") == [0.001]
    assert threshold_schedule(OmegaConf.create([0.01, 0])) == [0.01, 0.0]
    for bad in (None, [], "x", [0.1, -0.1]):
        with pytest.raises(ConfigError, match="dendrites.improvement_threshold"):
            threshold_schedule(bad)
    assert perforate.dendrites_config({"improvement_threshold": 0.5}).improvement_threshold == [0.5]
    assert perforate.dendrites_config(DendritesConfig(improvement_threshold=0.5)).improvement_threshold == [0.5]
    spec = DendritesSpec()
    assert perforate.dendrites_config(spec) is spec  # the worker's typed group is used as it is


def test_switch_modes_and_run_groups_are_defined_once():
    assert tuple(perforate.SWITCH_CONSTANTS) == SWITCH_MODES == perforate.SWITCH_READS.choices
    assert tuple(perforate.SWITCH_TIMING) == SWITCH_MODES
    from perforatedai import globals_perforatedai as GPA

    # the analysis reads PerforatedAI's own numbers: they name the same modes
    assert {getattr(GPA.pc, const): mode for mode, const in perforate.SWITCH_CONSTANTS.items()} == context.SWITCH_MODES
    assert worker.RUN_GROUPS is RUN_GROUPS == tuple(f.name for f in dataclasses.fields(RunSpec))
    assert set(RUN_GROUPS) < {f.name for f in dataclasses.fields(Config)}
    assert [f.name for f in dataclasses.fields(DendritesSpec)] == [f.name for f in dataclasses.fields(DendritesConfig)]
