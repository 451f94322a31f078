"""Every numeric knob is range-checked at compose time: one line naming the key, the value and the valid range."""

from __future__ import annotations

import pytest

from pai_sweep.compose import compose
from pai_sweep.errors import ConfigError
from pai_sweep.schema.ranges import RANGES


@pytest.mark.parametrize(
    "override, message",
    [
        ("sweep.trial_timeout=-5", "sweep.trial_timeout=-5.0 must be > 0 (seconds), or null for no limit"),
        ("sweep.trial_timeout=0", "sweep.trial_timeout=0.0 must be > 0 (seconds), or null for no limit"),
        ("sweep.in_flight=0", "sweep.in_flight=0 must be >= 1"),
        ("sweep.n_trials=0", "sweep.n_trials=0 must be >= 1"),
        ("sweep.max_failures=0", "sweep.max_failures=0 must be >= 1"),
        ("sweep.pruner_warmup=-1", "sweep.pruner_warmup=-1 must be >= 0 (epochs)"),
        ("train.max_epochs=0", "train.max_epochs=0 must be > 0"),
        ("train.optimizer.args.lr=0", "train.optimizer.args.lr=0 must be > 0 (learning rate)"),
        ("train.optimizer.args.lr=-1e-3", "train.optimizer.args.lr=-0.001 must be > 0 (learning rate)"),
        ("+train.scheduler.args.factor=1.5", "train.scheduler.args.factor=1.5 must be in (0, 1)"),
        ("objective.tolerance=-1", "objective.tolerance=-1.0 must be >= 0 (score points below the baseline)"),
        ("launcher.poll_interval=0", "launcher.poll_interval=0.0 must be > 0 (seconds)"),
        ("launcher.mem_gb=0", "launcher.mem_gb=0.0 must be > 0 (GB), or null for the partition's default"),
        ("model.dropout=1.0", "model.dropout=1.0 must be in [0, 1)"),
        ("model.hidden=[64,0]", "model.hidden[1]=0 must be >= 1"),
        ("dendrites.first_fixed_switch_num=-2", "dendrites.first_fixed_switch_num=-2 must be >= -1"),
        ("tracking.request_timeout=0", "tracking.request_timeout=0 must be > 0 (seconds)"),
    ],
)
def test_out_of_range_is_one_line(override, message):
    with pytest.raises(ConfigError) as err:
        compose([override])
    assert message in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("override", ["sweep.trial_timeout=null", "sweep.trial_timeout=30", "train.optimizer.args.lr=1e-3",
                                      "data.limit=null", "dendrites.max_dendrites=0", "sweep.guided_share=0"])
def test_in_range_and_null_where_allowed(override):
    compose([override])


def test_every_range_names_a_key_the_default_config_has():
    cfg = compose([])
    from pai_sweep.schema.ranges import _lookup

    optional = {"train.optimizer.args.weight_decay", "train.optimizer.args.momentum", "train.scheduler.args.factor"}
    assert [k for k in RANGES if k not in optional and not _lookup(cfg, k)[0]] == []
