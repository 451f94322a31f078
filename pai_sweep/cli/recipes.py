"""`pai-sweep recipes`: list the ready-made sweeps with their one-line purpose and command."""

from __future__ import annotations

from pai_sweep.compose import recipe_names, recipe_purpose


def recipes_command_parser(subparsers) -> None:
    p = subparsers.add_parser("recipes", help="list the ready-made sweeps (use one with +recipe=NAME)")
    p.set_defaults(func=recipes_command)


def recipes_command(args) -> int:
    names = recipe_names()
    if not names:
        print("no recipes installed")
        return 0
    width = max(len(n) for n in names)
    for name in names:
        command, purpose = recipe_purpose(name)
        print(f"{name:<{width}}  {purpose}\n{'':<{width}}  $ {command}")
    return 0
