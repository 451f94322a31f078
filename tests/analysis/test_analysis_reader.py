"""Reading real PerforatedAI 3.2.9 folders (fixtures and a fresh run), trial folders, and the older format."""

from __future__ import annotations

import shutil

from run_builder import CAPACITY_RUN, HISTORY_RUN

from pai_sweep import trial_files
from pai_sweep.analysis import read_history, run_rules
from pai_sweep.analysis.rules import all_rules


def test_history_run_fixture_facts():
    h = read_history(HISTORY_RUN)
    assert h.save_name == "real" and h.format == "3.2.9"
    acc = h.accepted
    assert list(acc["dendrites"]) == [0, 1] and list(acc["params"]) == [1210, 2446]
    assert round(float(acc["val"].max()), 2) == 96.30
    rej = h.rejected
    assert sorted(rej["params"].astype(int)) == [2446, 3760]  # a retried 1st set and the discarded 2nd set
    assert h.dendrites == 1 and h.ended_by == "tries_exhausted"
    assert h.total_epochs == 38  # 20 kept + the epochs PerforatedAI rolled back
    assert list(h.events[h.events["kind"] == "switch"]["epoch"]) == [16, 32]
    assert list(h.events[h.events["kind"] == "rejected"]["epoch"]) == [22, 37]
    assert h.switch_epochs == [13] and h.extras == ["Train"]
    assert len(h.scores) == 20 and set(h.scores["dendrites"]) == {0, 1}
    assert h.pb_scores.empty and list(h.pb_scores.columns) == ["epoch", ".0", ".2"]
    assert len(h.lr) == 20 and len(h.times) == 20 and not h.missing


def test_capacity_fixture_facts():
    h = read_history(CAPACITY_RUN)
    assert h.save_name == "tc" and h.dendrites == 3 and h.ended_by == "capacity_test"
    assert list(h.params["params"]) == [1210, 2446, 3760, 5126]
    assert h.switch_epochs == [0, 1, 2] and h.total_epochs == 4 and h.rejected.empty


def test_real_run_reads_consistently(real_pai_run):
    folder, epochs = real_pai_run
    h = read_history(folder)
    assert h.save_name == "pai" and h.context().n_epochs_to_switch == 2  # from pai_config.json
    assert h.total_epochs == epochs  # the replayed snapshots account for every epoch run
    assert len(h.switches) >= 1 and len(h.scores) > 0
    kept = h.best_arch[h.best_arch["status"] != "rejected"]
    assert list(kept["params"].astype(int)) == list(h.params["params"])[: len(kept)]
    assert list(kept["params"]) == sorted(kept["params"])
    ids = {i for r in all_rules() for i in r.rule_ids}
    fired = {f.rule_id for f in run_rules(h)}
    assert fired <= ids, fired - ids  # no rule_error, no undeclared id


def test_trial_folder_adds_metrics_result_and_run_config(tmp_path):
    trial = tmp_path / "trial"
    shutil.copytree(HISTORY_RUN, trial / "pai")
    for e in range(5):
        trial_files.append_metrics(trial, trial_files.EpochRecord(epoch=e, val=50.0 + e, train=60.0 + e, lr=0.01))
    trial_files.write_result(trial, trial_files.TrialResult(status="complete", reason="epoch_cap", best_val=54.0))
    (trial / trial_files.RUN_CONFIG).write_text(
        "dendrites: {max_dendrites: 4, n_epochs_to_switch: 3}\ntrain: {max_epochs: 5, optimizer: {args: {lr: 0.02}}}\n"
    )
    h = read_history(trial)
    assert h.trial_dir == trial and h.folder == trial / "pai"
    assert len(h.metrics) == 5 and h.total_epochs == 5 and h.ended_by == "epoch_cap"
    ctx = h.context()
    assert (ctx.max_dendrites, ctx.n_epochs_to_switch, ctx.max_epochs, ctx.lr) == (4, 3, 5, 0.02)
    still = [f for f in run_rules(h) if f.rule_id == "training.still_improving"]
    assert still and still[0].recommendation == {"train.max_epochs": 10}  # absolute: run.yaml gave the cap


def test_working_directory_holding_the_save_folder(tmp_path):
    shutil.copytree(CAPACITY_RUN, tmp_path / "tc")
    assert read_history(tmp_path).save_name == "tc"


def test_older_best_test_scores_format(tmp_path):
    (tmp_path / "oldScores.csv").write_text("Epochs,Validation Scores\n0,80\n1,85\n2,86\n")
    (tmp_path / "oldbest_test_scores.csv").write_text("Param Counts,Max Valid Scores,Max Test Scores\n100,85,84\n200,86,85.5\n")
    (tmp_path / "oldswitch_epochs.csv").write_text("Switch Number,Switch Epoch\n0,1\n1,1\n")
    h = read_history(tmp_path)
    assert h.format == "legacy" and h.dendrites == 1
    from pai_sweep.analysis import choose_architecture

    c = choose_architecture(h)
    assert (c.dendrites, c.val, c.test, c.params) == (1, 86.0, 85.5, 200)
    assert any("param_counts" in m for m in h.missing)


def test_missing_best_arch_file_is_rebuilt_from_scores(tmp_path):
    run = shutil.copytree(HISTORY_RUN, tmp_path / "run")
    (run / "real_best_arch_scores.csv").unlink()
    h = read_history(run)
    assert any("_best_arch_scores.csv is missing" in m for m in h.missing)
    kept = h.accepted
    assert list(kept["params"]) == [1210, 2446] and [round(v, 2) for v in kept["val"]] == [96.11, 96.30]
