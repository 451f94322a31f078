"""`pai-sweep check [OVERRIDES] [--out DIR] [--no-capacity-test]`: will this integration work, and what will it cost?

Composes the same config a sweep would use, inspects the model, infers output_dimensions,
projects parameter counts, checks direction/device/loop, runs the library's capacity test
in a subprocess, prints the verdict and writes check.json. Exit 0 if the integration can
work, 1 if not (2 for a config that does not compose).
"""

from __future__ import annotations

from pathlib import Path


def check_command_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "check",
        help="check a model/dendrites integration before a sweep (modules, dims, cost, capacity test)",
        description="Inspect the model, infer output_dimensions, project parameters, run the 3-dendrite capacity test; "
        "print a verdict and write check.json. Exit 0 if the integration can work, 1 if not.",
    )
    p.add_argument("overrides", nargs="*", help="Hydra overrides, as for a sweep (e.g. model=custom model._target_=pkg.Net dendrites=auto)")
    p.add_argument("--out", default=None, help="folder for check.json and the capacity test (default: <sweep dir>/check)")
    p.add_argument("--no-capacity-test", action="store_true", help="skip the library's capacity test (static checks only, seconds)")
    p.add_argument("--capacity-batches", type=int, default=None, help="train on at most this many batches per capacity-test epoch")
    p.set_defaults(func=check_command)


def check_command(args) -> int:
    from pai_sweep.check.verdict import run_check
    from pai_sweep.compose import compose

    cfg = compose(args.overrides)
    out = Path(args.out) if args.out else Path(str(cfg.sweep.dir)) / "check"
    result = run_check(cfg, out, capacity_test=not args.no_capacity_test, capacity_batches=args.capacity_batches)
    print(result.verdict)
    print(f"written: {result.path}")
    return 0 if result.ok else 1
