"""Hydra's own command-line conventions for `pai-sweep [OVERRIDES]`: --cfg, --resolve, --package, --info, --help.

Hydra's parser reads the flags and Hydra's own Hydra object prints the config, the info and the help (with
a help template that also lists the subcommands and the recipes), so the output is what any Hydra app
prints. Also: `hydra.run.dir=DIR` is the sweep folder, and an unknown key gets "did you mean" from the
config's own keys instead of Hydra's advice to add it with '+'.
"""

from __future__ import annotations

from pai_sweep.overrides import did_you_mean, rewrite_overrides

# Flags that mean "do what a Hydra app does" rather than run the sweep.
FLAGS = ("--cfg", "-c", "--resolve", "--package", "-p", "--info", "-i", "--help", "-h", "--hydra-help")
HELP_TEMPLATE = """pai-sweep: sweep PerforatedAI dendrite settings (Hydra configs, Optuna, MLflow).

  pai-sweep [OVERRIDES]          run (or resume) a sweep, e.g. pai-sweep model=mlp sweep.n_trials=4
  pai-sweep +recipe=NAME         a ready-made sweep (below)
  pai-sweep COMMAND ...          run | analyze | report | compare | check | env | recipes (pai-sweep COMMAND --help)

== Configuration groups ==
Compose your configuration from those groups (group=option; recipe with +recipe=NAME)

$APP_CONFIG_GROUPS
== Recipes ==
{recipes}
== Flags (as in any Hydra app) ==
--cfg,-c job|hydra|all   show the composed config instead of running
--resolve                with --cfg: resolve interpolations
--package,-p PKG         with --cfg: only this package, e.g. --package dendrites
--info,-i [KIND]         Hydra's information: all, config, defaults, defaults-tree, plugins, searchpath
--hydra-help             Hydra's own help
-v                       show third-party log lines (MLflow, alembic)
hydra.run.dir=DIR        the sweep folder (the same as sweep.dir=DIR)

== Config ==
Override anything in the config (foo.bar=value)

$CONFIG"""


def wants_hydra(overrides: list[str]) -> bool:
    return any(a.split("=", 1)[0] in FLAGS for a in overrides)


def _help_node() -> dict:
    from pai_sweep.compose import recipe_names, recipe_purpose

    lines = []
    for name in recipe_names():
        command, purpose = recipe_purpose(name)
        lines.append(f"  {name}: {purpose or command}")
    template = HELP_TEMPLATE.replace("{recipes}", "\n".join(lines) + "\n").replace("${", "$${")
    return {"app_name": "pai-sweep", "header": "", "footer": "", "template": template}


def run_hydra_flags(argv: list[str]) -> int:
    """`pai-sweep [OVERRIDES] --cfg job|hydra|all [--resolve] [--package P]`, `--info [KIND]`, `--help`."""
    from hydra import initialize_config_dir
    from hydra._internal.utils import get_args_parser
    from hydra.core.config_store import ConfigStore
    from hydra.core.global_hydra import GlobalHydra

    from pai_sweep.compose import _one_line, _register, conf_dir, compose
    from pai_sweep.errors import ConfigError

    parser = get_args_parser()
    args = parser.parse_args(argv)
    overrides = rewrite_overrides(list(args.overrides))
    _register()
    ConfigStore.instance().store(group="hydra/help", name="pai_sweep", node=_help_node(), provider="pai_sweep")
    if args.cfg or args.info is not None:
        compose(overrides)  # the same checks a run makes: a bad override is one line, not Hydra's traceback
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3", job_name="pai-sweep"):
            hydra = GlobalHydra.instance().hydra
            if args.help:
                hydra.app_help("config", parser, _Args(overrides + ["hydra/help=pai_sweep"], args.resolve))
            elif args.hydra_help:
                hydra.hydra_help("config", parser, _Args(overrides, args.resolve))
            elif args.info is not None:
                hydra.show_info(args.info, "config", overrides)
            else:
                hydra.show_cfg("config", overrides, args.cfg, args.package, resolve=args.resolve)
    except ConfigError:
        raise
    except Exception as exc:  # noqa: BLE001 - Hydra's errors: one line
        raise ConfigError(did_you_mean(_one_line(exc), overrides)) from exc
    finally:
        GlobalHydra.instance().clear()
    return 0


class _Args:
    def __init__(self, overrides: list[str], resolve: bool):
        self.overrides, self.resolve = overrides, resolve
