"""`pai-sweep report SWEEP_DIR`: write (or refresh) a sweep's report and say where it is."""

from __future__ import annotations

from pathlib import Path


def report_command_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "report",
        help="write a sweep's report: Pareto front, trials table, findings, rule-guided vs sampler, importances",
        description="Reads the sweep's study and trial folders; writes report.md, report.html, report.json and PNG plots.",
    )
    p.add_argument("sweep_dir", type=Path, help="the sweep folder (e.g. sweeps/default)")
    p.add_argument("--out", type=Path, default=None, help="where to write (default: SWEEP_DIR/report)")
    p.set_defaults(func=report_command)


def report_command(args) -> int:
    from pai_sweep.report import write_sweep_report

    out = write_sweep_report(args.sweep_dir, args.out)
    print(f"report: {out / 'report.md'} (also report.html, report.json and the PNG plots there)")
    return 0
