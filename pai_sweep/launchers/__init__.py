"""Launchers start, poll and cancel trials; each backend fills the small hooks of `Launcher`."""

from pai_sweep.launchers.base import JobState, Launcher, TrialJob

__all__ = ["JobState", "Launcher", "TrialJob", "make_launcher"]


def make_launcher(launcher_cfg, sweep_dir, in_flight: int) -> Launcher:
    """The launcher named by `launcher.name` (imported lazily: submitit only when asked for)."""
    name = launcher_cfg.name
    if name == "local":
        from pai_sweep.launchers.local import LocalLauncher

        return LocalLauncher(launcher_cfg, sweep_dir, in_flight)
    if name in ("slurm", "submitit_local"):
        from pai_sweep.launchers.slurm import SubmititLauncher

        return SubmititLauncher(launcher_cfg, sweep_dir, in_flight)
    from pai_sweep.errors import ConfigError

    raise ConfigError(f"launcher.name={name!r} is not known; valid values: local, slurm, submitit_local")
