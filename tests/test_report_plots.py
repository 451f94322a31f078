"""The report's plots read well: trial labels on the Pareto plot never overlap (matplotlib's own text boxes),
trials at one point share one label, progress.png has whole-number ticks and counts derived trials as free,
every plot has a title."""

from __future__ import annotations

from pai_sweep.report.data import SweepData, TrialRow
from pai_sweep.report.plots import importance_plot, pareto_figure, progress_figure


def _row(number, objective, params, origin="sampler"):
    return TrialRow(number=number, state="COMPLETE", origin=origin, objective=objective, params=params, score=objective,
                    dendrites=0, feasible=None, status="complete", reason=None)


def crowded() -> SweepData:
    rows = [_row(0, 90.0, 5000, "baseline")]
    # a tight cluster (labels would collide at one offset) and derived trials at their parent's exact point
    for i in range(1, 13):
        rows.append(_row(i, 88.0 + 0.05 * (i % 4), 1000 + 15 * (i // 4)))
    rows += [_row(13, 88.0, 1000, "derived"), _row(14, 88.0, 1000, "derived"), _row(15, 88.1, 1015, "derived")]
    return SweepData(name="crowded", sweep_dir="/nowhere", directions=["maximize", "minimize"], objective_name="efficiency",
                     rows=rows, search_keys=["dendrites.max_dendrites"])


def test_pareto_labels_never_overlap_and_share_a_point():
    fig, ax = pareto_figure(crowded())
    renderer = fig.canvas.get_renderer()
    labels = [t for t in ax.texts if t.get_text()]
    boxes = [t.get_window_extent(renderer) for t in labels]
    overlaps = [(labels[i].get_text(), labels[j].get_text()) for i in range(len(boxes)) for j in range(i + 1, len(boxes))
                if boxes[i].overlaps(boxes[j])]
    assert overlaps == []
    texts = [t.get_text() for t in labels]
    assert "1,13,14" in texts or any(set(t.split(",")) >= {"13", "14"} for t in texts), texts  # one label per point
    assert sorted(int(n) for t in texts for n in t.split(",")) == list(range(16))  # every trial is named once
    assert ax.get_title()


def test_progress_ticks_are_whole_trials_and_derived_trials_are_free(tmp_path):
    data = crowded()
    fig, ax = progress_figure(data)
    fig.canvas.draw()
    ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
    assert ticks and all(float(t).is_integer() for t in ticks)
    xs = [x for coll in ax.collections for x, _ in coll.get_offsets()]
    assert max(xs) == 13  # 13 trials ran (baseline included); the 3 derived ones add nothing
    assert ax.get_title()
    importance_plot({"dendrites.max_dendrites": 0.7, "train.optimizer.args.lr": 0.3}, tmp_path / "imp.png")


def test_trials_table_names_searched_keys_by_their_last_part():
    from pai_sweep.report import short_keys

    keys = ["dendrites.max_dendrites", "dendrites.candidate_weight_initialization_multiplier", "train.optimizer.args.lr",
            "model.width_mult", "downsize.width_mult"]
    assert short_keys(keys) == ["max_dendrites", "init multiplier", "lr", "model.width_mult", "downsize.width_mult"]
