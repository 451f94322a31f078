"""Hydra's own command-line conventions for `pai-sweep [OVERRIDES]`: --cfg, --resolve, --package, --info, --help,
--shell-completion (-sc).

Hydra's parser reads the flags and Hydra's own Hydra object prints the config, the info and the help (with
a help template that also lists the subcommands and the recipes), so the output is what any Hydra app
prints. Also: `hydra.run.dir=DIR` is the sweep folder, and an unknown key gets "did you mean" from the
config's own keys instead of Hydra's advice to add it with '+'.
"""

from __future__ import annotations

from pai_sweep.overrides import did_you_mean, rewrite_overrides

# Flags that mean "do what a Hydra app does" rather than run the sweep.
FLAGS = ("--cfg", "-c", "--resolve", "--package", "-p", "--info", "-i", "--help", "-h", "--hydra-help",
         "--shell-completion", "-sc")
HELP_TEMPLATE = """pai-sweep: sweep PerforatedAI dendrite settings (Hydra configs, Optuna, MLflow).

  pai-sweep [OVERRIDES]          run (or resume) a sweep, e.g. pai-sweep model=mlp sweep.n_trials=4
  pai-sweep +recipe=NAME         a ready-made sweep (below)
  pai-sweep COMMAND ...          run | analyze | report | compare | check | env | recipes | warm (pai-sweep COMMAND --help)

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
-sc install=bash         Hydra's shell completion: eval "$$(pai-sweep -sc install=bash)" (zsh, fish too)
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


def run_hydra_flags(argv: list[str], subcommands: tuple[str, ...] = ()) -> int:
    """`pai-sweep [OVERRIDES] --cfg job|hydra|all [--resolve] [--package P]`, `--info [KIND]`, `--help`, `-sc ...`.

    `subcommands`: pai-sweep's subcommand names, which shell completion also offers (passed in by the
    dispatcher, which this module must not import)."""
    from hydra import initialize_config_dir
    from hydra._internal.utils import get_args_parser
    from hydra.core.config_store import ConfigStore
    from hydra.core.global_hydra import GlobalHydra

    from pai_sweep.compose import _one_line, _register, conf_dir, compose
    from pai_sweep.errors import ConfigError
    from pai_sweep.schema import valid_keys

    parser = get_args_parser()
    args = parser.parse_args(argv)
    if args.shell_completion:
        return shell_completion(list(args.overrides), subcommands)
    overrides = rewrite_overrides(list(args.overrides))
    _register()
    ConfigStore.instance().store(group="hydra/help", name="pai_sweep", node=_help_node(), provider="pai_sweep")
    if args.cfg or args.info is not None:
        compose(overrides)  # the same checks a run makes: a bad override is one line, not Hydra's traceback
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3", job_name="pai-sweep"):
            hydra = GlobalHydra.instance().hydra
            _one_repository(hydra.config_loader)
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
        raise ConfigError(did_you_mean(_one_line(exc), overrides, valid_keys())) from exc
    finally:
        GlobalHydra.instance().clear()
    return 0


def _one_repository(loader) -> None:
    """Let this (per-command) config loader build its repository once per (config, overrides).

    Hydra's help lists the groups with ~100 get_group_options calls (its own hydra/* groups included), and
    each one deep-copies the whole config repository, ConfigStore and all (pai-sweep stores the schema and
    every recipe there): most of `pai-sweep --help`'s time, and of each Tab of shell completion. Listing
    only reads the copy, so one serves every call. Hydra's private method (hydra-core is pinned <1.4):
    without it, nothing changes but the time."""
    original = getattr(loader, "_parse_overrides_and_create_caching_repo", None)
    if original is None:
        return
    made: dict = {}

    def once(config_name, overrides):
        key = (config_name, tuple(overrides))
        if key not in made:
            made[key] = original(config_name, overrides)
        return made[key]

    loader._parse_overrides_and_create_caching_repo = once


class _Args:
    def __init__(self, overrides: list[str], resolve: bool):
        self.overrides, self.resolve = overrides, resolve


def shell_completion(args: list[str], subcommands: tuple[str, ...] = ()) -> int:
    """`pai-sweep -sc install=bash|zsh|fish`, `uninstall=...`, and `query=...` (what the installed script runs on Tab).

    Hydra's own completion plugins over the same config loader a run uses (conf/ plus the schema and the
    recipes in the ConfigStore), so `pai-sweep mod<Tab>` offers `model=` and `pai-sweep model=<Tab>` its
    options. The query also understands the `sweep` subcommand and offers the subcommand names."""
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from pai_sweep.compose import _register, conf_dir
    from pai_sweep.errors import ConfigError

    kinds = [a.split("=", 1) for a in args if "=" in a]
    if len(kinds) != 1 or kinds[0][0] not in ("install", "uninstall", "query") or len(args) != 1:
        raise ConfigError("shell completion takes one of install=SHELL, uninstall=SHELL, query=SHELL "
                          "(e.g. eval \"$(pai-sweep -sc install=bash)\")")
    kind, shell = kinds[0]
    _register()
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3", job_name="pai-sweep"):
            hydra = GlobalHydra.instance().hydra
            _one_repository(hydra.config_loader)
            plugins = hydra.get_shell_to_plugin_map(hydra.config_loader)
            if shell not in plugins:
                raise ConfigError(f"no shell completion for '{shell}'; one of: {', '.join(sorted(plugins))}")
            plugin = plugins[shell][0]
            if kind == "query":
                _query(plugin, subcommands)
            else:
                getattr(plugin, kind)()
    finally:
        GlobalHydra.instance().clear()
    return 0


def _query(plugin, subcommands: tuple[str, ...]) -> None:
    """What Hydra's plugin.query prints, for the line bash puts in COMP_LINE, with `pai-sweep sweep ...` read as
    `pai-sweep ...` and the subcommands offered for the first word. A line it cannot read offers nothing
    (Tab then falls back to file names): a completion that prints an error would put the error on the prompt."""
    import os

    line = os.environ.get("COMP_LINE", "")
    try:
        rest = plugin.strip_python_or_app_name(line)
        words = rest.split()
        extra: list[str] = []
        if not words or (len(words) == 1 and not rest.endswith(" ")):  # the first word: a subcommand too
            extra = [c for c in subcommands if c.startswith(words[0] if words else "")]
        elif words[0] in subcommands:
            if words[0] != "sweep":
                return  # another subcommand's own flags and paths: the shell's file-name completion
            rest = rest.split("sweep", 1)[1].lstrip()
        candidates = sorted(set(plugin._query(config_name="config", line=rest)) | set(extra))
    except Exception:  # noqa: BLE001 - see the docstring: nothing rather than an error on the prompt
        return
    print(("\n" if plugin.provides() == "fish" else " ").join(candidates))  # as Hydra's own plugins print
