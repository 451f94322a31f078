"""sweep/size_ladder.py: which sizes and knobs a guided efficiency sweep starts with (no training here)."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from pai_sweep.search_space import parse_space
from pai_sweep.sweep.size_ladder import ladder, rungs_for

GUIDED = OmegaConf.create({"size_ladder": "auto", "rule_trials": True, "derived_trials": True})
EFFICIENCY = OmegaConf.create({"name": "efficiency"})


def test_a_range_without_a_step_climbs_geometric_sizes_below_the_original():
    space = parse_space({"downsize.width_mult": {"type": "float", "low": 0.2, "high": 1.0},
                         "dendrites.max_dendrites": {"type": "int", "low": 1, "high": 4}})
    rungs = ladder(GUIDED, EFFICIENCY, space, 3)
    widths = [r["downsize.width_mult"] for r in rungs]
    # 4 geometric steps from 0.2 towards 1.0 (0.2, 0.299, 0.447, 0.669); 3 rungs keep both ends and one between,
    # the largest first (one step down from the original at a time)
    assert widths == pytest.approx([0.2 * 5 ** 0.75, 0.2 * 5 ** 0.5, 0.2])
    assert all(r["dendrites.max_dendrites"] == 4 and "dendrites.n_epochs_to_switch" not in r for r in rungs)


def test_categorical_sizes_and_the_original_left_out():
    space = parse_space({"downsize.width_mult": {"type": "categorical", "choices": [1.0, 0.5, 0.25]}})
    assert ladder(GUIDED, EFFICIENCY, space, 5) == [{"downsize.width_mult": 0.5}, {"downsize.width_mult": 0.25}]
    only_original = parse_space({"downsize.width_mult": {"type": "categorical", "choices": [1.0]}})
    assert ladder(GUIDED, EFFICIENCY, only_original, 5) == []
    assert ladder(GUIDED, EFFICIENCY, space, 1) == [{"downsize.width_mult": 0.5}]


def test_rungs_are_half_the_start_up_and_at_most_a_quarter_of_the_trials():
    assert rungs_for(12, 6) == 3 and rungs_for(40, 10) == 5 and rungs_for(4, 2) == 1 and rungs_for(2, 2) == 1


def test_no_ladder_on_a_grid_which_runs_every_size_anyway():
    space = parse_space({"downsize.width_mult": {"type": "float", "low": 0.25, "high": 1.0, "step": 0.25}})
    assert len(ladder(GUIDED, EFFICIENCY, space, 3)) == 3
    grid = OmegaConf.merge(GUIDED, {"sampler": "grid"})
    assert ladder(grid, EFFICIENCY, space, 3) == []


def test_a_range_below_the_original_keeps_its_own_high_end():
    space = parse_space({"downsize.width_mult": {"type": "float", "low": 0.1, "high": 0.8}})
    widths = [r["downsize.width_mult"] for r in ladder(GUIDED, EFFICIENCY, space, 4)]
    assert widths == pytest.approx([0.8, 0.1 * 8 ** (2 / 3), 0.1 * 8 ** (1 / 3), 0.1])
