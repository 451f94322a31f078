"""One Hydra job = one pai-sweep trial: write run.yaml, run `python -m pai_sweep.worker` (runner=worker) or the
hand-written PerforatedAI script benchmarks/plain_trial.py (runner=plain), return best_val.

The worker is the one pai-sweep's driver starts, with the same environment its local launcher
gives a CPU slot, so the two sides of the benchmark differ only in how trials are scheduled.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import OmegaConf


@hydra.main(config_path="conf", config_name="config", version_base="1.3")
def trial(cfg) -> float:
    job = HydraConfig.get().job.num
    trial_dir = Path(cfg.work) / "trials" / str(job)
    trial_dir.mkdir(parents=True, exist_ok=True)
    run = OmegaConf.load(cfg.base_run)
    run.train.max_epochs = int(cfg.train.max_epochs)
    run.train.optimizer.args.lr = float(cfg.train.lr)
    run.dendrites.candidate_weight_initialization_multiplier = float(cfg.dendrites.candidate_weight_initialization_multiplier)
    (trial_dir / "run.yaml").write_text(OmegaConf.to_yaml(run))
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "PYTHONUNBUFFERED": "1", "MPLBACKEND": "Agg"}
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[name] = str(cfg.threads)
    start = time.time()
    if cfg.runner == "plain":  # the hand-written PerforatedAI loop with library defaults (graphs and checkpoints every epoch)
        cmd = [sys.executable, str(Path(__file__).resolve().parents[1] / "plain_trial.py"), str(trial_dir / "run.yaml"), str(trial_dir)]
    else:
        cmd = [sys.executable, "-m", "pai_sweep.worker", str(trial_dir)]
    with open(trial_dir / "worker.log", "ab") as log:
        subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=trial_dir, env=env, check=False)
    if cfg.runner == "plain":  # the same completion record as a worker's, for the benchmark's bookkeeping
        plain = json.loads((trial_dir / "plain_result.json").read_text())
        (trial_dir / "result.json").write_text(json.dumps({"status": "complete", "best_val": plain["best_val"]}))
    (trial_dir / "launch.json").write_text(json.dumps({"start_time": start, "end_time": time.time(), "launcher": "hydra-joblib"}))
    result = json.loads((trial_dir / "result.json").read_text())
    return float(result.get("best_val") or 0.0)


if __name__ == "__main__":
    trial()
