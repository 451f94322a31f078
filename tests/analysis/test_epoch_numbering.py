"""One epoch numbering: findings, the analysis summary and its plot count epochs as the training loop does
(metrics.jsonl `epoch`, MLflow's step, Optuna's intermediate values), not by PerforatedAI's renumbered history."""

from __future__ import annotations

import math
import re

from run_builder import HISTORY_RUN

from pai_sweep.analysis import analyze, read_history
from pai_sweep.trial_files import read_metrics

# Three dendrites in history mode with a learning-rate scheduler: rollbacks at every switch, and the library's
# learning-rate search (a rollback no snapshot shows) before the end. ~8 s on one CPU core.
GROW = {
    "model": {"name": "small_cnn"},
    "dendrites": {"n_epochs_to_switch": 2, "max_dendrites": 3, "improvement_threshold": 0.0},
    "train": {"max_epochs": 45, "test_saves": True, "optimizer": {"type": "Adam", "args": {"lr": 0.05}},
              "scheduler": {"type": "ReduceLROnPlateau", "args": {"mode": "max", "patience": 1}}},
}


def test_real_trial_numbers_epochs_as_metrics_jsonl(tmp_path, run_trials):
    folder = run_trials(tmp_path, {"grow": GROW}, timeout=300)["grow"]
    records = {r.epoch: r for r in read_metrics(folder)}
    h = read_history(folder)
    assert len(h.scores) < len(records), "PerforatedAI discarded epochs: the two numberings differ"
    # every kept epoch is placed where the loop recorded that very score, in order
    placed = [h.loop_epoch(p) for p in range(len(h.scores))]
    assert None not in placed and placed == sorted(set(placed)) and placed != list(range(len(placed)))
    for p, q in enumerate(placed):
        assert math.isclose(records[q].val, float(h.scores["val"].iloc[p]), rel_tol=1e-6), (p, q)
    # a switch is placed at the epoch the loop restructured at, where the dendrite count became the new one
    for _, sw in h.switches.iterrows():
        at = h.switch_loop_epoch(int(sw["epoch"]))
        assert records[at].restructured and records[at].dendrites == int(sw["dendrites"]), (sw["epoch"], at)

    a = analyze(folder)
    assert round(records[a.summary["best_epoch"]].val, 4) == a.summary["best_score"]  # the summary rounds to 4 places
    for phase in a.summary["phases"]:
        assert records[phase["first_epoch"]].dendrites in (phase["dendrites"], phase["dendrites"] - 1)
        assert records[phase["last_epoch"]].dendrites == phase["dendrites"] or records[phase["last_epoch"] + 1].restructured
    named = [int(n) for f in a.findings for n in re.findall(r"\bepoch (\d+)", f.message)]
    assert named, [f.message for f in a.findings]
    assert all(n in records for n in named) and "PerforatedAI's epoch" not in " ".join(f.message for f in a.findings)
    for f in a.findings:
        if f.rule_id == "switch.before_plateau":
            at = int(re.search(r"switch at epoch (\d+)", f.message).group(1))
            assert records[at].restructured, f.message


def test_pai_folder_alone_numbers_epochs_by_the_replay():
    """Without metrics.jsonl the snapshots place the kept epochs: the fixture restructured at 16, 22 (the retry
    that was kept) and 32; its final history's one dendrite begins right after the retry."""
    h = read_history(HISTORY_RUN)
    assert [h.loop_epoch(p) for p in range(len(h.scores))] == list(range(14)) + list(range(23, 29))
    assert h.switch_epochs == [13] and h.switch_loop_epoch(13) == 22
    assert h.loop_epoch(len(h.scores)) is None and h.loop_epoch(-1) is None
