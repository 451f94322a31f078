"""`pai-sweep [OVERRIDES]` / `pai-sweep sweep [OVERRIDES]`: run or resume a sweep (docs/sweeps.md)."""

from __future__ import annotations

import importlib
import sys
import threading

# What the driver imports only once the first trial has ended (analysis plots, the report's plots): ~0.3-0.4 s on
# 2 cores, imported in the background while the first trial's worker still boots or trains.
LATER_IMPORTS = ("matplotlib.figure", "matplotlib.backends.backend_agg", "matplotlib.ticker", "PIL.PngImagePlugin",
                 "pai_sweep.analysis.plots", "pai_sweep.report.plots")


def sweep_command_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "sweep",
        help="run (or resume) a sweep; the same command again continues it",
        description="Run a sweep: Hydra overrides such as model=mlp sweep.n_trials=4 sweep.in_flight=2.",
    )
    p.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. sweep.n_trials=4 +recipe=quick_cpu")
    p.set_defaults(func=sweep_command)


def sweep_command(args) -> int:
    from pai_sweep.compose import compose

    cfg = compose(args.overrides)
    launcher = None
    if cfg.launcher.name == "local":
        # The local launcher first, before the driver's own imports (Optuna, SQLAlchemy, MLflow: ~0.5 s): its warm
        # worker server starts importing torch and PerforatedAI now, told whether the trials need torchvision.
        from pathlib import Path

        from pai_sweep.launchers import make_launcher
        from pai_sweep.launchers.warm import plan_preload

        plan_preload(cfg)
        launcher = make_launcher(cfg.launcher, Path(str(cfg.sweep.dir)), int(cfg.sweep.in_flight))
    threading.Thread(target=_import_later_imports, name="pai-sweep-imports", daemon=True).start()
    from pai_sweep.driver import exit_status, run_sweep

    code, reason = exit_status(run_sweep(cfg, launcher))
    if reason:
        print(f"pai-sweep: error: {reason}", file=sys.stderr)
    return code


def _import_later_imports() -> None:
    for name in LATER_IMPORTS:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - the driver imports it again where it needs it and says what is wrong
            pass
