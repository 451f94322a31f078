"""A hand-written PerforatedAI training script: the overhead benchmark's reference side.

It follows PerforatedAI's setup guide (integration Steps 2-7) the way a user would
write them, with the library's defaults (graphs drawn every epoch, test saves on): GPA.pc
settings, UPA.perforate_model, tracker.setup_optimizer, and the add_validation_score loop that
rebuilds the optimizer after a restructure. The trial (model, data, seed, knobs) is read from
a pai-sweep run.yaml so both sides train exactly the same thing; data and model come from
pai-sweep's builders (the same tensors and the same initial weights), everything PerforatedAI
does is written out here.

    python benchmarks/plain_trial.py RUN_YAML OUT_DIR      # writes OUT_DIR/pai/ and OUT_DIR/plain_result.json
"""

from __future__ import annotations

import json
import os
import random
import sys
import time
from pathlib import Path

T0 = time.time()

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(run_yaml: str, out_dir: str) -> dict:
    import numpy as np
    import torch
    import torch.nn.functional as F
    from omegaconf import OmegaConf

    # Step 2: imports
    from perforatedai import globals_perforatedai as GPA
    from perforatedai import utils_perforatedai as UPA

    from pai_sweep.data import load_data
    from pai_sweep.models import build_model

    cfg = OmegaConf.load(run_yaml)
    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    os.chdir(out)  # PerforatedAI writes ./pai/
    d, t = cfg.dendrites, cfg.train
    seed = int(t.seed)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    data = load_data(cfg.data, batch_size=int(t.batch_size), seed=seed)
    model = build_model(cfg.model, data.input_shape, data.num_classes)
    next(iter(data.train))  # pai-sweep's worker takes one batch for its checks: the same draw keeps the data order equal

    # Step 3: PAI settings for a CNN (the setup guide's preset); the capacity test is for the first
    # smoke run only, and an unattended run must answer the library's questions up front.
    GPA.pc.set_testing_dendrite_capacity(False)
    GPA.pc.set_configuration_confirmed(True)
    GPA.pc.set_unwrapped_modules_confirmed(True)
    GPA.pc.set_checked_skipped_modules(True)
    GPA.pc.set_device(torch.device("cpu"))
    GPA.pc.set_module_names_to_perforate(list(d.module_names_to_perforate))
    GPA.pc.set_output_dimensions([int(v) for v in d.output_dimensions])
    # the trial's knobs, as the sweep chose them
    GPA.pc.set_max_dendrites(int(d.max_dendrites))
    threshold = d.improvement_threshold
    GPA.pc.set_improvement_threshold([float(v) for v in threshold] if OmegaConf.is_list(threshold) else float(threshold))
    GPA.pc.set_improvement_threshold_raw(float(d.improvement_threshold_raw))
    GPA.pc.set_candidate_weight_initialization_multiplier(float(d.candidate_weight_initialization_multiplier))
    GPA.pc.set_switch_mode(GPA.pc.DOING_HISTORY)
    GPA.pc.set_n_epochs_to_switch(int(d.n_epochs_to_switch))
    GPA.pc.set_history_lookback(int(d.history_lookback))
    GPA.pc.set_initial_history_after_switches(int(d.initial_history_after_switches))
    GPA.pc.set_max_dendrite_tries(int(d.max_dendrite_tries))
    GPA.pc.set_find_best_lr(bool(d.find_best_lr))

    # Step 4: initialise the model
    model = UPA.perforate_model(model, save_name="pai", maximizing_score=True)
    model = model.to("cpu")

    # Step 6: optimizer and scheduler through the tracker
    lr = float(t.optimizer.args.lr)
    sched_args = dict(OmegaConf.to_container(t.scheduler.args))
    GPA.pai_tracker.set_optimizer(torch.optim.Adam)
    GPA.pai_tracker.set_scheduler(torch.optim.lr_scheduler.ReduceLROnPlateau)
    optimizer, scheduler = GPA.pai_tracker.setup_optimizer(model, {"params": model.parameters(), "lr": lr}, dict(sched_args))

    def accuracy(loader) -> float:
        model.eval()
        correct = total = 0
        with torch.no_grad():
            for x, y in loader:
                correct += int((model(x).argmax(1) == y).sum())
                total += len(y)
        model.train()
        return 100.0 * correct / max(total, 1)

    # Step 7: the training loop; PerforatedAI decides when it is complete
    best_val, epochs, t_train, compute = 0.0, 0, time.time(), 0.0
    for epoch in range(int(t.max_epochs)):
        t_epoch = time.perf_counter()  # pure training: the epoch's training and scoring, without the library's bookkeeping
        model.train()
        for x, y in data.train:
            optimizer.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            optimizer.step()
        val, train_acc, test = accuracy(data.val), accuracy(data.train), accuracy(data.test)
        compute += time.perf_counter() - t_epoch
        best_val, epochs = max(best_val, val), epoch + 1
        GPA.pai_tracker.add_extra_score(train_acc, "Train")
        GPA.pai_tracker.add_extra_score(test, "Test")
        model, restructured, training_complete = GPA.pai_tracker.add_validation_score(val, model)
        model = model.to("cpu")
        if training_complete:
            break
        elif restructured:
            optimizer, scheduler = GPA.pai_tracker.setup_optimizer(
                model, {"params": model.parameters(), "lr": lr}, dict(sched_args))
    result = {"best_val": best_val, "epochs": epochs, "params": int(UPA.count_params(model)),
              "seconds": round(time.time() - T0, 3), "train_loop_seconds": round(time.time() - t_train, 3),
              "compute_seconds": round(compute, 3)}
    (out / "plain_result.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    print(json.dumps(main(sys.argv[1], sys.argv[2])))
    sys.stdout.flush()
    os._exit(0)  # the library's atexit hooks and threads cannot hold the process
