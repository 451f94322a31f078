"""`pai-sweep compare SWEEP_DIR SWEEP_DIR...`: several sweeps on the same axes (e.g. guided vs unguided)."""

from __future__ import annotations

from pathlib import Path


def compare_command_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "compare",
        help="put two or more sweeps on the same axes: best objective vs trials used, Pareto fronts",
        description="Writes compare.md, compare.html, compare.json and PNG plots.",
    )
    p.add_argument("sweep_dirs", type=Path, nargs="+", metavar="SWEEP_DIR", help="two or more sweep folders")
    p.add_argument("--out", type=Path, default=None, help="where to write (default: a compare-A-vs-B folder beside the first sweep)")
    p.set_defaults(func=compare_command)


def compare_command(args) -> int:
    from pai_sweep.report import compare_sweeps

    out = compare_sweeps(args.sweep_dirs, args.out)
    print(f"comparison: {out / 'compare.md'} (also compare.html, compare.json and the PNG plots there)")
    return 0
