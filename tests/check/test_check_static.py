"""The static part of the check (no capacity test): inspection, dims, preset, auto, direction, loop, CLI."""

from __future__ import annotations

import json
import re

import pytest

from pai_sweep.check import run_check
from pai_sweep.check.auto import build_for_check, derive
from pai_sweep.check.verdict import loop_problems
from pai_sweep.cli import main


@pytest.fixture
def static(tiny):
    """static(tmp_path, *overrides) -> CheckResult of the checks without the capacity test."""
    return lambda tmp_path, *overrides: run_check(tiny(*overrides), tmp_path / "check", capacity_test=False)


def dims_of(result) -> dict:
    return {m["path"]: m["inferred"] for m in result.dims["modules"]}


def test_mlp(tmp_path, static):
    r = static(tmp_path, "model=mlp", "dendrites=linear_only")
    assert r.ok, r.verdict
    assert r.preset == "linear_only"
    assert dims_of(r) == {".body.1": [-1, 0], ".body.3": [-1, 0], ".head": [-1, 0]}
    assert r.inspection["unwrapped_params"] == []


def test_small_cnn(tmp_path, static):
    r = static(tmp_path, "model=small_cnn", "dendrites=cnn")
    assert r.ok, r.verdict
    assert r.preset == "cnn"
    assert dims_of(r) == {".features.0": [-1, 0, -1, -1], ".features.3": [-1, 0, -1, -1], ".head": [-1, 0]}


def test_conv1d_auto_perforates_the_convolutions(tmp_path, static, xdg_cache):
    convs = {".features.0": [-1, 0, -1], ".features.4": [-1, 0, -1], ".features.8": [-1, 0, -1]}
    r = static(tmp_path, "data=mnist1d", "model=conv1d", "dendrites=auto")
    assert r.ok, r.verdict
    assert r.preset == "conv1d" and "3 Conv1d convolutions" in r.preset_reason and "[batch, channels, time]" in r.preset_reason
    assert {m["path"]: m["type"] for m in r.inspection["perforated"]} == {**{p: "Conv1d" for p in convs}, ".head": "Linear"}
    assert dims_of(r) == {**convs, ".head": [-1, 0]}
    assert {m["type"] for m in r.inspection["tracked"]} == {"BatchNorm1d"} and r.inspection["unwrapped_params"] == []
    assert r.dendrites["output_dimensions"] == [-1, 0, -1] and list(r.dendrites["module_names_to_perforate"]) == ["Conv1d", "Linear"]
    # the 2-D cnn preset would perforate only the head: the check points at the preset that fits
    cnn = static(tmp_path, "data=mnist1d", "model=conv1d", "dendrites=cnn")
    assert [m["path"] for m in cnn.inspection["perforated"]] == [".head"]
    assert any("dendrites=conv1d fits this model" in n for n in cnn.notes), cnn.notes


def test_resnet18_tiny(tmp_path, static):
    r = static(tmp_path, "model=resnet18", "model.width_mult=0.125", "data=digits32", "dendrites=resnet")
    assert r.ok, r.verdict
    assert r.preset == "resnet"
    perforated = [m["path"] for m in r.inspection["perforated"]]
    assert perforated[:2] == [".layer1.0", ".layer1.1"] and perforated[-1] == ".fc" and len(perforated) == 9
    assert {m["type"] for m in r.inspection["perforated"]} == {"BasicBlock", "Linear"}
    assert [m["path"] for m in r.inspection["tracked"]] == [".conv1", ".bn1"]
    assert dims_of(r)[".layer4.1"] == [-1, 0, -1, -1] and dims_of(r)[".fc"] == [-1, 0]
    assert r.inspection["unwrapped_params"] == []
    assert ".layer1.0" in [b["path"] for b in r.inspection["blocks"]]


def test_transformer_names_unwrapped_modules(tmp_path, static):
    r = static(tmp_path, "model=transformer", "dendrites=transformer")
    assert r.ok, r.verdict
    assert r.preset == "transformer"
    dims = dims_of(r)
    assert dims[".embed"] == [-1, -1, 0] and dims[".encoder.layers.0.linear1"] == [-1, -1, 0] and dims[".head"] == [-1, 0]
    unwrapped = {m["type"] for m in r.inspection["unwrapped_modules"]}
    assert {"Embedding", "LayerNorm", "MultiheadAttention"} <= unwrapped
    assert ".positions.weight" in r.inspection["unwrapped_params"]
    assert ".encoder.layers.1.self_attn.in_proj_weight" in r.inspection["unwrapped_params"]
    assert {b["type"] for b in r.inspection["blocks"]} == {"TransformerEncoderLayer"}


def test_transformer_without_head_override_fails_naming_it(tmp_path, static):
    r = static(tmp_path, "model=transformer", "dendrites=transformer", "~dendrites.output_dimension_overrides.head")
    assert not r.ok
    assert any(".head expects [-1, 0]" in p for p in r.problems), r.verdict
    assert "FAILED" in r.verdict and "dendrites=transformer or dendrites=auto" in r.verdict
    written = json.loads((tmp_path / "check" / "check.json").read_text())
    assert written["ok"] is False and written["problems"] == r.problems
    # the override the check prints is a working command-line argument
    hint = re.search(r"\('(\+dendrites\.output_dimension_overrides=[^']+)'\)", r.problems[0]).group(1)
    fixed = static(tmp_path, "model=transformer", "dendrites=transformer", "~dendrites.output_dimension_overrides.head", hint)
    assert fixed.ok, fixed.verdict


def test_transformer_dims_on_mlp_fail(tmp_path, static):
    r = static(tmp_path, "model=mlp", "dendrites=transformer")
    assert not r.ok
    assert any(".body.1 expects [-1, 0]" in p for p in r.problems), r.verdict
    assert any("dendrites=linear_only fits" in n for n in r.notes)


def test_custom_model_needs_auto(tmp_path, static):
    target = ["model=custom", "model._target_=check_nets.ConvTokens"]
    r = static(tmp_path, *target, "dendrites=cnn")
    assert not r.ok and r.preset == "custom"
    assert any(".mix expects [-1, -1, 0]" in p for p in r.problems), r.verdict
    r = static(tmp_path, *target, "dendrites=auto")
    assert r.ok, r.verdict
    assert r.dendrites["output_dimension_overrides"] == {"mix": [-1, -1, 0]}
    assert r.dendrites["output_dimensions"] == [-1, 0, -1, -1]


def test_auto_tracks_a_module_forward_never_calls(tmp_path, static, tiny):
    target = ["model=custom", "model._target_=check_nets.WithSpare"]
    r = static(tmp_path, *target, "dendrites=linear_only")
    assert any(p.startswith(".spare (Linear) is never called") for p in r.problems), r.verdict
    cfg = tiny(*target, "dendrites=auto")
    model, sample, _ = build_for_check(cfg)
    resolved, _ = derive(model, sample, cfg.dendrites)
    assert list(resolved.module_ids_to_track) == [".spare"]
    assert static(tmp_path, *target, "dendrites=auto").ok


def test_direction(tmp_path, static):
    # compose already insists the scheduler mode follows maximizing_score; the check adds the metric itself
    r = static(tmp_path, "model=mlp", "dendrites=linear_only", "dendrites.maximizing_score=false", "train.scheduler.args.mode=min")
    assert not r.ok
    assert any("reports the accuracy for a classification task" in p and "set dendrites.maximizing_score=true" in p for p in r.problems)


def test_scheduler_mode_against_direction():
    from pai_sweep.check.verdict import direction_problems

    train = {"scheduler": {"type": "ReduceLROnPlateau", "args": {"mode": "min"}}}
    assert any("train.scheduler.args.mode=max" in p for p in direction_problems({"maximizing_score": True}, train, "classification"))


def test_custom_train_fn_inspected():
    assert any("builds its own optimizer" in p for p in loop_problems("check_nets.train_fn_own_optimizer"))
    assert loop_problems("check_nets.train_fn_good") == []
    assert loop_problems(None) == []


def test_cli_exit_codes(tmp_path, capsys):
    base = ["check", "data.limit=120", "train.device=cpu", "tracking=off", "model=mlp"]
    assert main([*base, "dendrites=transformer", "--no-capacity-test", "--out", str(tmp_path / "bad")]) == 1
    assert ".body.1 expects [-1, 0]" in capsys.readouterr().out
    assert main([*base, "dendrites=linear_only", "--no-capacity-test", "--out", str(tmp_path / "good")]) == 0
    assert "OK: the integration can work" in capsys.readouterr().out
    assert json.loads((tmp_path / "good" / "check.json").read_text())["ok"] is True


def test_model_failing_on_the_sample_is_a_verdict(tmp_path, static):
    r = static(tmp_path, "model=custom", "model._target_=check_nets.WrongInput", "dendrites=linear_only")
    assert not r.ok
    assert r.problems[0].startswith("the model failed on one sample batch of the data (RuntimeError: mat1 and mat2")
    assert (tmp_path / "check" / "check.json").exists()
