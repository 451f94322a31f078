"""What the analysis feeds back into the search after a trial is told: derived trials, rule trials
(sweep/rule_policy.py decides which run) and prefix reuse (sweep/prefix_reuse.py). A mixin of SweepLoop
(sweep/loop.py), whose state it uses.
"""

from __future__ import annotations

import random

import optuna
from omegaconf import OmegaConf
from optuna.trial import TrialState

from pai_sweep import branching
from pai_sweep.progress import short_params
from pai_sweep.schema.run import run_dict
from pai_sweep.sweep import feedback, rule_policy
from pai_sweep.sweep.prefix_reuse import PREFIX_OF, fixed_prefix
from pai_sweep.sweep.running import Outcome, Running
from pai_sweep.sweep.start_points import prefix_in_training
from pai_sweep.sweep.study import RULE, SAMPLER, origin, startup_trials


class Guidance:
    """After a told trial: derived trials, rule trials, prefix reuse (SweepLoop's state); before a sampler trial, waiting
    for the neuron phase it shares with a running trial."""

    _waited_for: int | None = None  # the running trial the sweep said it waits for (said once)
    _base_run: dict | None = None  # the sweep's run config without searched params (every sampler trial's prefix)

    def _waits_for_prefix(self) -> bool:
        """True while the next sampler trial should wait for a running trial's state before its first switch
        (start_points.prefix_in_training); queued trials (baseline, re-runs, rule trials) never wait."""
        if self.cfg.sweep.branching == "off" or not branching.post_switch_only(self.space.keys):
            return False  # what every launch pays on most sweeps: no storage query, no folder scan
        if self.study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
            return False
        if self._base_run is None:
            self._base_run = OmegaConf.to_container(OmegaConf.create(run_dict(self.cfg)), resolve=True)
        number = prefix_in_training(self.cfg, list(self.space.keys), self._base_run, self.sweep_dir,
                                    [(run.number, run.trial_dir) for run in self.running.values()], self.branch_points)
        if number is not None and number != self._waited_for:
            self.progress.note(f"the next trial waits for trial {number}'s state before its first switch "
                               f"(sweep.branching={self.cfg.sweep.branching}): it would train the same epochs")
        self._waited_for = number if number is not None else self._waited_for
        return number is not None

    def _reuse_prefix(self) -> None:
        """sweep.prefix_reuse: queue the next sampler trial with a front trial's pre-switch params fixed (it branches)."""
        share = float(self.cfg.sweep.get("prefix_reuse") or 0.0)
        if share <= 0 or self.cfg.sweep.branching == "off" or self.study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
            return  # queued trials (baseline, re-runs, rule trials) go first
        trials = self._trials()
        rng = random.Random(int(self.cfg.sweep.seed) * 7_000_003 + len(trials))
        found = fixed_prefix(trials, self.study.directions, self.space, share, startup_trials(self.cfg.sweep), rng)
        if found is not None:
            params, parent = found
            self.study.enqueue_trial(params, user_attrs={"origin": SAMPLER, PREFIX_OF: parent})

    def _feedback(self, run: Running, outcome: Outcome, frozen: optuna.trial.FrozenTrial) -> None:
        sweep = self.cfg.sweep
        if sweep.derived_trials and outcome.history is not None:
            derived = feedback.derived_trials(
                outcome.history, frozen, run.number, run.params, self.space, outcome.result, self.cfg.objective, self.baseline,
                findings=outcome.findings, context=outcome.context,
            )
            for t in derived:
                self.study.add_trial(t)
                self._track(self.study.trials[-1], run.trial_dir)
            if derived:
                counts = ", ".join(str(t.user_attrs["dendrites"]) for t in derived)
                self.progress.note(f"trial {run.number}: added {len(derived)} derived trial(s) for max_dendrites={counts}")
            for bound in outcome.attrs.get("lower_bounds", []):
                self.progress.note(f"trial {run.number}: {bound['dendrites']} dendrite(s) still improving at the switch: "
                                   f"{bound['val']:.4g} is a lower bound, not told as a value")
        if sweep.rule_trials and outcome.findings:
            self.pending_rules.extend((f, run.number, dict(run.params), outcome.history, outcome.context) for f in outcome.findings)
        if sweep.rule_trials:
            self._enqueue_rule_trials()

    def _enqueue_rule_trials(self) -> None:
        """Turn waiting recommendations into trials once the sampler's start-up is done (sweep/rule_policy.py)."""
        sweep, trials = self.cfg.sweep, self._trials()
        if not self.pending_rules or not rule_policy.started(trials, startup_trials(sweep)):
            return
        used = sum(1 for t in trials if origin(t).startswith(RULE))
        room = min(int(sweep.guided_share * sweep.n_trials) - used, self.budget_left())
        pending, self.pending_rules = self.pending_rules, []
        if room <= 0:
            return
        candidates, skipped = [], []
        fresh = feedback.new_recommendations(reversed(pending), self.study, self.space, self.cfg)  # the newest evidence first
        for rule_id, params, (_, parent, parent_params, history, context) in fresh:
            changed = {k: v for k, v in params.items() if parent_params.get(k) != v}
            why = rule_policy.cannot_act(changed, parent_params, history, context)
            if why:
                skipped.append(f"{rule_id} (trial {parent}): {why}")
                continue
            candidates.append((rule_id, (parent, params, changed)))
        rng = random.Random(int(sweep.seed) * 1_000_003 + len(trials))
        keep, cut = rule_policy.select(candidates, trials, self.study.directions, rng, since=startup_trials(sweep))
        for rule_id, (parent, params, changed) in keep[:room]:
            feedback.enqueue_rule_trial(self.study, rule_id, parent, params, self.space)
            self.progress.note(f"trial {parent}: rule {rule_id} queued a trial with {short_params(changed)}")
        if skipped:
            self.progress.note("rule advice skipped, its knobs cannot act: " + "; ".join(skipped))
        if cut:
            self.progress.note("rule advice not run, the sampler's trials did better: " + "; ".join(cut))
