"""The worker end to end on real PerforatedAI and digits: dendrites added, files written, restarts, presets.

All trials of this module run side by side in one fixture (real worker processes).
"""

from __future__ import annotations

import json
import os
import re
import signal
import threading
import time
from pathlib import Path

import pytest
import yaml

from pai_sweep.compose import compose
from pai_sweep.preflight import capacity_test
from pai_sweep.trial_files import read_metrics, read_result
from pai_sweep.spawn import spawn_worker

def custom_fit(session, data):
    """A user's own loop (train.train_fn) written against the PAISession API."""
    import torch
    import torch.nn.functional as F

    model, opt = session.model, session.optimizer()
    while True:
        for x, y in data.train:
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            correct = sum(int((model(x).argmax(1) == y).sum()) for x, y in data.val)
        model.train()
        model, restructured, complete = session.report(100.0 * correct / len(data.val.dataset))
        if complete:
            return
        if restructured:
            opt = session.optimizer()


# Chosen so the history mode adds one dendrite, keeps it, and PerforatedAI completes (max_dendrites reached).
GROW = {
    "model": {"name": "small_cnn"},
    "dendrites": {"n_epochs_to_switch": 2, "max_dendrites": 1},
    "train": {"max_epochs": 30, "test_saves": False, "resume": True, "optimizer": {"type": "Adam", "args": {"lr": 0.05}}},
}
KILL_AFTER = 19  # epochs: after the restructure (~epoch 17), before completion (22)
# Three dendrites with the learning-rate search after the later ones, through the branch where the library
# reloads its PBCount_* checkpoint (written only with test_saves): what the lean per-epoch writing must not change.
LR_SEARCH = {
    "model": {"name": "small_cnn"},
    "dendrites": {"n_epochs_to_switch": 2, "max_dendrites": 3, "improvement_threshold": 0.0},
    "train": {"max_epochs": 45, "test_saves": True, "optimizer": {"type": "Adam", "args": {"lr": 0.05}},
              "scheduler": {"type": "ReduceLROnPlateau", "args": {"mode": "max", "patience": 1}}},
}
RUNS = {
    "grow": GROW,
    "every_epoch": {**GROW, "train": {**GROW["train"], "graphs": "every_epoch"}},
    "lean": LR_SEARCH,  # graphs=end: running CSVs once at the end, no unread checkpoints
    "library": {**LR_SEARCH, "train": {**LR_SEARCH["train"], "graphs": "every_epoch"}},  # the library left alone
    "resnet": {
        "model": {"name": "resnet18", "width_mult": 0.125},
        "dendrites": {"preset": "resnet", "module_names_to_perforate": ["BasicBlock", "Bottleneck", "Linear"],
                      "module_ids_to_track": [".conv1", ".bn1"], "output_dimensions": [-1, 0, -1, -1]},
        "data": {"name": "digits32", "image_size": 32, "limit": 64, "val_fraction": 0.05, "test_fraction": 0.05},
        "train": {"max_epochs": 1, "batch_size": 32, "test_saves": False},
    },
    "train_fn": {"model": {"name": "mlp", "hidden": [8]},
                 "dendrites": {"module_names_to_perforate": ["Linear"], "output_dimensions": [-1, 0],
                               "switch_mode": "every_time", "max_dendrites": 1},
                 "train": {"max_epochs": 6, "test_saves": False, "train_fn": "test_worker.custom_fit"}},
    "baseline": {"model": {"name": "mlp", "hidden": [16]}, "dendrites": {"preset": "off", "enabled": False, "n_epochs_to_switch": 2},
                 "train": {"max_epochs": 40}},
}


@pytest.fixture(scope="module")
def trials(tmp_path_factory, run_trials):
    root = tmp_path_factory.mktemp("worker")
    # A requeued job finds what its killed predecessor left: it must start again cleanly.
    partial = root / "every_epoch"
    (partial / "pai").mkdir(parents=True)
    (partial / "pai" / "pai_config.json").write_text('{"max_dendrites": 99}')
    (partial / "metrics.jsonl").write_text('{"epoch": 0, "val": 1.0}\n{"epoch": 1, "val"')
    # A preempted job: killed after KILL_AFTER epochs, then run again in the same folder.
    killed = root / "resumed"
    killed.mkdir()
    (killed / "run.yaml").write_text(yaml.safe_dump(GROW))
    proc = spawn_worker(killed, env={"OMP_NUM_THREADS": "1"})
    watcher = threading.Thread(target=_kill_after, args=(killed, proc, KILL_AFTER))
    watcher.start()
    dirs = run_trials(root, RUNS, timeout=300)
    watcher.join(timeout=300)
    assert proc.poll() == -signal.SIGKILL, "the trial to resume finished before it could be killed"
    assert len(read_metrics(killed)) >= KILL_AFTER and read_result(killed) is None
    return {**dirs, **run_trials(root, {"resumed": GROW}, timeout=300)}


def _kill_after(folder: Path, proc, epochs: int) -> None:
    while proc.poll() is None:
        if len(read_metrics(folder)) >= epochs:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            return
        time.sleep(0.02)


def test_trial_grows_dendrites_and_completes(trials):
    folder = trials["grow"]
    result = read_result(folder)
    assert result.status == "complete" and result.reason == "pai_complete", result.reason
    assert result.dendrites == 1 and result.params > result.base_params == result.original_params
    # the trial's compute in CPU seconds (load-independent, unlike wall seconds), and how its accuracy was measured
    assert 0 < result.extra["cpu_seconds"]
    assert result.extra["score"]["kind"] == "accuracy_percent" and result.extra["score"]["val_samples"] > 0
    records = read_metrics(folder)
    assert [r.epoch for r in records] == list(range(result.epochs))
    assert any(r.restructured for r in records) and records[0].dendrites == 0
    assert all(r.train is not None and r.test is not None and r.lr for r in records)
    best = max(records, key=lambda r: r.val)
    assert result.best_val == best.val and result.best_test == best.test
    assert (folder / "pai" / "pai_best_arch_scores.csv").exists()
    header = (folder / "pai" / "pai_best_arch_scores.csv").read_text().splitlines()[0]
    assert header.startswith("Param Counts,Max Valid Scores") and "Train" in header and "Test" in header


def test_graphs_end_writes_the_same_csvs_as_every_epoch(trials):
    end, every = trials["grow"] / "pai", trials["every_epoch"] / "pai"
    csvs_end = sorted(p.name for p in end.glob("*.csv"))
    assert csvs_end == sorted(p.name for p in every.glob("*.csv"))
    # same seed, same data order: the scores PerforatedAI recorded are the same (Times CSVs: wall-clock seconds)
    for name in csvs_end:
        if not name.endswith("Times.csv"):
            assert (end / name).read_bytes() == (every / name).read_bytes(), name
    assert (end / "pai.png").exists() and (every / "pai.png").exists()


STAMP = re.compile(r"_\d\d\.\d\d\.\d{4}\.\d\d\.\d\d\.\d\d")  # the library's timestamp in snapshot names


def _csvs(folder: Path) -> dict[str, bytes]:
    return {STAMP.sub("_<time>", p.name): p.read_bytes() for p in folder.glob("*.csv")}


def test_lean_writing_keeps_every_csv_and_the_training_of_the_library_default(trials):
    lean, library = trials["lean"], trials["library"]
    for folder in (lean, library):
        assert read_result(folder).status == "complete", read_result(folder).reason
    # the run went through the learning-rate search's reload of a PBCount_ checkpoint (test_saves=true)
    names = {p.name for p in (lean / "pai").iterdir()}
    assert any(n.endswith("PBCount_3_startSteps_0PICKEDScores.csv") for n in names), sorted(names)
    assert "PBCount_3_startSteps_1.pt" in names and "switch_6.pt" in names
    # the unread checkpoints are gone, and only them
    assert {"latest.pt", "beforeSwitch_0.pt"} <= {p.name for p in (library / "pai").iterdir()}
    assert not any(n == "latest.pt" or n.startswith("beforeSwitch_") and n.endswith(".pt") for n in names)
    assert {p.name for p in (library / "pai").glob("*.pt")} - {p.name for p in (lean / "pai").glob("*.pt")} == {
        "latest.pt", *(p.name for p in (library / "pai").glob("beforeSwitch_*.pt"))}
    # every CSV, snapshots included, byte for byte; Times CSVs hold wall-clock seconds
    lean_csvs, library_csvs = _csvs(lean / "pai"), _csvs(library / "pai")
    assert sorted(lean_csvs) == sorted(library_csvs) and len(lean_csvs) > 30
    differ = sorted(n for n in lean_csvs if lean_csvs[n] != library_csvs[n])
    assert all(n.endswith("Times.csv") for n in differ), differ
    # and the same training, epoch by epoch
    facts = lambda folder: [(r.epoch, r.val, r.train, r.test, r.loss, r.lr, r.params, r.dendrites, r.restructured)
                            for r in read_metrics(folder)]
    assert facts(lean) == facts(library)
    assert all(r.compute_seconds is not None and 0 < r.compute_seconds <= r.seconds for r in read_metrics(lean))


def test_requeued_folder_restarts_cleanly(trials):
    folder = trials["every_epoch"]
    result = read_result(folder)
    assert result.status == "complete", result.reason
    records = read_metrics(folder)
    assert [r.epoch for r in records] == list(range(result.epochs))
    assert json.loads((folder / "pai" / "pai_config.json").read_text()).get("max_dendrites") != 99
    assert "interrupted earlier attempt" in (folder / "worker.log").read_text()


def test_killed_trial_resumes_exactly(trials):
    resumed, straight = trials["resumed"], trials["grow"]
    result = read_result(resumed)
    assert result.status == "complete" and result.reason == "pai_complete", result.reason
    assert re.search(r"resumed after epoch (18|19) ", (resumed / "worker.log").read_text())
    assert result.extra["resumed_at_epoch"] in (19, 20)
    assert [r.val for r in read_metrics(resumed)] == [r.val for r in read_metrics(straight)]
    for name in ("paiScores.csv", "pai_best_arch_scores.csv", "paiswitch_epochs.csv", "pailearning_rate.csv"):
        assert (resumed / "pai" / name).read_text() == (straight / "pai" / name).read_text(), name
    assert not (resumed / "resume_state.pt").exists() and not (resumed / "pai" / "resume.pt").exists()


def test_resnet_preset_perforates_basic_blocks(trials):
    folder = trials["resnet"]
    result = read_result(folder)
    assert result.status == "complete", result.reason
    assert result.epochs == 1 and result.reason == "epoch_cap"
    # 8 BasicBlocks + the Linear head
    assert result.extra["perforated"] == 9
    assert (folder / "pai" / "pai_best_arch_scores.csv").exists()


def test_own_training_function_drives_perforatedai_through_the_session(trials):
    folder = trials["train_fn"]
    result = read_result(folder)
    assert result.status == "complete" and result.reason in ("pai_complete", "epoch_cap"), result.reason
    records = read_metrics(folder)
    assert records[0].restructured and max(r.params for r in records) > result.base_params
    assert all(r.train is None and r.test is None for r in records)
    assert (folder / "pai" / "pai_best_arch_scores.csv").exists()


def test_baseline_trains_plain_model_without_pai_files(trials):
    folder = trials["baseline"]
    result = read_result(folder)
    assert result.status == "complete", result.reason
    records = read_metrics(folder)
    assert not (folder / "pai").exists()
    assert all(r.dendrites == 0 and r.params == result.params == result.base_params for r in records)
    if result.reason == "no_improvement":  # stopped where PerforatedAI would add the first dendrite
        best = max(r.epoch for r in records if r.val == result.best_val)
        assert result.epochs - 1 - best >= 2
    else:
        assert result.reason == "epoch_cap" and result.epochs == 40


def test_existing_result_is_not_overwritten(trials):
    folder = trials["baseline"]
    before = (folder / "result.json").read_text()
    assert spawn_worker(folder).wait(timeout=120) == 0
    assert (folder / "result.json").read_text() == before


@pytest.fixture
def one_thread(monkeypatch):
    # trials run side by side on few cores: torch's own threads would only fight each other
    monkeypatch.setenv("OMP_NUM_THREADS", "1")


def test_capacity_test_adds_three_dendrites(one_thread):
    cfg = compose(["model=mlp", "model.hidden=[8]", "dendrites=linear_only"])
    report = capacity_test(cfg, batches=2)
    assert report["ok"] and report["dendrites"] == 3, report
    assert len(report["params"]) == 4 and report["params"] == sorted(set(report["params"]))
    assert report["verdict"].startswith("OK: 3 dendrites added")
    assert not Path(report["folder"]).exists()


def test_capacity_test_says_why_it_cannot(tmp_path, one_thread):
    cfg = compose(["model=transformer", "model.d_model=8", "model.n_layers=1", "dendrites=cnn"])
    report = capacity_test(cfg, batches=2, workdir=tmp_path / "check")
    assert not report["ok"] and report["verdict"].startswith("FAILED: dendrites cannot be added")
    assert "output_dimension_overrides" in report["verdict"]
