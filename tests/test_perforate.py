"""perforate's checks before the library sees a model, and the PAISession loop without dendrites.

Nothing here configures PerforatedAI in this process (its state is global): real perforation
runs in worker subprocesses (test_worker.py, test_traps.py).
"""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from pai_sweep import perforate
from pai_sweep.check import plan as planning
from pai_sweep.compose import compose
from pai_sweep.errors import ConfigError, IntegrationError
from pai_sweep.schema import knobs
from pai_sweep.training import PAISession, TrialFailure


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.gain = nn.Parameter(torch.ones(1))
        self.head = nn.Linear(4, 10)

    def forward(self, x):
        return self.head(self.bn(self.conv(x)).mean((2, 3))) * self.gain


CNN = {"module_names_to_perforate": ["Conv2d", "Linear"], "output_dimensions": [-1, 0, -1, -1]}


def test_knob_list_matches_the_installed_library():
    assert perforate.live_knobs() == knobs.KNOWN_KNOBS


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"n_epochs_for_switch_history": 3}, "did you mean n_epochs_to_switch"),
        ({"configuration_confirmed": False}, "cannot be set"),
        ({"max_dendrites": 4}, "use dendrites.max_dendrites"),
    ],
)
def test_check_knobs_refuses_bad_extra_names(extra, message):
    with pytest.raises(IntegrationError, match=message):
        knobs.check_knobs({"extra": extra})


def test_check_knobs_accepts_real_library_knobs():
    knobs.check_knobs({"extra": {"dont_give_up_unless_learning_rate_lowered": True, "verbose": False}})


def test_plan_tracks_norm_layers_by_class_and_loose_parameters_by_id():
    plan = planning.plan_model(Net(), CNN)
    assert plan.perforated == [".conv", ".head"]
    assert "BatchNorm2d" in plan.track_names and plan.tracked == [".bn"]
    assert plan.track_params == [".gain"]
    assert any("BatchNorm2d" in note for note in plan.notes)


@pytest.mark.parametrize(
    ("model", "cfg", "message"),
    [
        (nn.DataParallel(nn.Linear(2, 2)), {"module_names_to_perforate": ["Linear"]}, "wrapped in DataParallel"),
        (nn.Sequential(nn.ReLU()), {"module_names_to_perforate": ["Linear"]}, "no module of the model matches"),
        (Net(), {**CNN, "module_ids_to_track": [".bn2"]}, "names no module of this model"),
    ],
)
def test_plan_refuses_models_that_cannot_work(model, cfg, message):
    with pytest.raises(IntegrationError, match=message):
        planning.plan_model(model, cfg)


def test_module_attribute_is_refused_before_the_library():
    model = nn.Sequential()
    model.add_module("module", nn.Linear(2, 2))
    with pytest.raises(IntegrationError, match="named 'module'"):
        planning.refuse_wrappers(model)


def test_output_dimensions_are_checked_on_one_batch():
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 8), nn.Unflatten(1, (2, 4)), nn.Linear(4, 3))
    cfg = {"module_names_to_perforate": ["Linear"], "output_dimensions": [-1, 0]}
    plan = planning.plan_model(model, cfg)
    x = torch.randn(2, 1, 8, 8)
    with pytest.raises(IntegrationError, match=r"module 3 \(Linear\) whose output is \[2, 2, 3\].*\{3: \[-1, -1, 0\]\}"):
        planning.check_output_dimensions(model, plan, cfg, x)
    planning.check_output_dimensions(model, plan, {**cfg, "output_dimension_overrides": {"3": [-1, -1, 0]}}, x)
    with pytest.raises(IntegrationError, match="not a perforated module"):
        planning.check_output_dimensions(model, plan, {**cfg, "output_dimension_overrides": {"0": [-1, 0]}}, x)


def test_save_name_cannot_hold_a_slash():
    assert perforate.sanitise_save_name("runs/a b") == "runs_a_b"
    assert perforate.sanitise_save_name("///") == "pai"


def test_null_plot_absorbs_the_tracker_drawing_calls():
    plt = perforate._NullPlot()
    fig = plt.figure(figsize=(28, 14))
    ax = plt.subplot(221)
    ax.twinx().plot([1], [2], label="x")
    ax.legend(bbox_to_anchor=(1.05, 1), loc="upper left")
    fig.tight_layout()
    plt.savefig("x.png")
    assert list(plt.gca()) == []


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["dendrites.maximizing_score=false"], "train.scheduler.args.mode=min"),
        (["dendrites.output_dimensions=[-1,0,0]"], "exactly one 0"),
        (["+dendrites.extra.drawing_pai=false"], "crashes the library's plotting"),
        (["train.device=gpu"], "train.device='gpu' is not known"),
        (["+train.optimizer.args.params=1"], "cannot be set"),
    ],
)
def test_compose_refuses_bad_dendrites_and_train_values(overrides, message):
    with pytest.raises((ConfigError, IntegrationError), match=message):
        compose(overrides)


def _session(tmp_path, **kw):
    train = {"max_epochs": kw.pop("max_epochs", 10), "optimizer": {"type": "SGD", "args": {"lr": 0.1}},
             "scheduler": {"type": "ReduceLROnPlateau", "args": {"mode": "max", "patience": 0, "factor": 0.5}}}
    return PAISession(nn.Linear(2, 2), train_cfg=train, enabled=False, trial_dir=tmp_path, **kw)


def test_plain_session_stops_where_the_first_dendrite_would_come(tmp_path):
    session = _session(tmp_path, patience=2)
    opt = session.optimizer()
    assert isinstance(opt, torch.optim.SGD)
    completes = [session.report(v, train=v, test=v - 1)[2] for v in (50.0, 60.0, 59.0, 58.0)]
    assert completes == [False, False, False, True] and session.end_reason == "no_improvement"
    assert opt.param_groups[0]["lr"] < 0.1  # the loop stepped ReduceLROnPlateau itself
    lines = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in lines] == [0, 1, 2, 3] and lines[1]["val"] == 60.0 and lines[1]["params"] == 6
    assert session.best().epoch == 1


def test_session_caps_epochs_and_refuses_nan(tmp_path):
    session = _session(tmp_path, max_epochs=2)
    assert session.report(1.0)[2] is False
    assert session.report(2.0)[2] is True and session.end_reason == "epoch_cap"
    with pytest.raises(TrialFailure, match="validation score is nan"):
        _session(tmp_path / "x").report(float("nan"))


def test_report_before_optimizer_is_one_line_not_a_library_crash(tmp_path):
    train = {"max_epochs": 3, "optimizer": {"type": "SGD", "args": {"lr": 0.1}}}
    session = PAISession(nn.Linear(2, 2), train_cfg=train, enabled=True, trial_dir=tmp_path)
    with pytest.raises(TrialFailure, match=r"session.report\(\) came before session.optimizer\(\)"):
        session.report(50.0)


def test_final_csvs_survive_a_stale_epoch_last_improved(monkeypatch):
    """3.2.9's tracker can end (epoch cap after a learning-rate search rollback) with epoch_last_improved past its
    rolled-back score history; its plotting indexes the scores with it before writing Scores.csv, so finish_graphs
    clamps it for the final write (seen in a real sweep: no running CSV at all, the analysis could not read the run)."""
    from perforatedai import globals_perforatedai as GPA

    seen = {}

    class Tracker:
        member_vars = {"epoch_last_improved": 9, "accuracies": [50.0, 60.0, 70.0], "n_accuracies": [50.0, 60.0, 70.0]}

        def save_graphs(self, extra_string=""):
            elm = self.member_vars["epoch_last_improved"]
            seen["value"] = self.member_vars["accuracies"][elm]  # what the library's plotting does

    monkeypatch.setattr(GPA, "pai_tracker", Tracker(), raising=False)
    perforate.stub_plots()
    perforate.finish_graphs(draw=False)
    assert seen["value"] == 70.0  # clamped to the last recorded epoch for the write
    assert GPA.pai_tracker.member_vars["epoch_last_improved"] == 9  # and put back afterwards
