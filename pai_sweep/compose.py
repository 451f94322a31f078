"""Compose the Hydra config from conf/ (+ recipes/ as group `recipe`) without taking over argv or cwd."""

from __future__ import annotations

import functools
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from pai_sweep.errors import ConfigError
from pai_sweep.paths import conf_dir, recipes_dir  # noqa: F401 - re-exported: callers find the folders here too


def recipe_names() -> list[str]:
    return sorted(p.stem for p in recipes_dir().glob("*.yaml"))


def recipe_purpose(name: str) -> tuple[str, str]:
    """(command, purpose) from a recipe's header: line 1 is the command, line 2 the purpose."""
    lines = [ln.lstrip("# ").rstrip() for ln in (recipes_dir() / f"{name}.yaml").read_text().splitlines()[:3]]
    lines = [ln for ln in lines if ln and not ln.startswith("@package")]
    return (lines[0] if lines else "", lines[1] if len(lines) > 1 else "")


@functools.cache
def _register() -> None:
    from hydra.core.config_store import ConfigStore

    from pai_sweep import schema

    schema.register()
    store = ConfigStore.instance()
    # recipes/ is a top-level folder, not under conf/: each file becomes option `recipe=<stem>`.
    for path in sorted(recipes_dir().glob("*.yaml")):
        node = OmegaConf.load(path)
        store.store(group="recipe", name=path.stem, node=node, package="_global_")


def compose(overrides: list[str] | tuple[str, ...] = (), config_name: str = "config") -> DictConfig:
    """The full config for these overrides; any Hydra failure becomes one ConfigError line."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from pai_sweep.overrides import did_you_mean, rewrite_overrides
    from pai_sweep.schema import valid_keys

    overrides = rewrite_overrides(list(overrides))  # hydra.run.dir=DIR -> sweep.dir=DIR
    _register()
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
            cfg = hydra_compose(config_name=config_name, overrides=list(overrides))
    except Exception as exc:  # Hydra/OmegaConf raise many types; all mean "bad config"
        raise ConfigError(did_you_mean(_one_line(exc), overrides, valid_keys())) from exc
    finally:
        GlobalHydra.instance().clear()
    from pai_sweep.consumers import check_overrides
    from pai_sweep.validate import validate

    validate(cfg)
    if cfg.launcher.name in ("slurm", "submitit_local"):
        # submitit's own parameter names; imported here, not in validate, so checking a run config never reaches submitit
        from pai_sweep.launchers.slurm import check_config

        check_config(cfg.launcher)
    check_overrides(cfg, overrides)  # a key=value the chosen options ignore would do nothing
    return cfg


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()).split(" Config search path:")[0]
    if "recipe" in text and ("Could not find" in text or "not found" in text):
        text += f" (available recipes: {', '.join(recipe_names())})"
    return text or type(exc).__name__
