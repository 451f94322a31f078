"""`pai-sweep analyze PATH`: findings, summary and plots for one PerforatedAI output folder or trial folder."""

from __future__ import annotations

import json


def analyze_command_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "analyze", help="analyse a PerforatedAI output folder (or a trial folder): report, findings.json, plots"
    )
    p.add_argument("path", help="the folder PerforatedAI wrote (./<save_name>/) or a pai-sweep trial folder")
    p.add_argument("--out", default=None, help="where to write report.md, findings.json and plots (default: PATH/analysis/)")
    p.add_argument("--save-name", default=None, help="which run, when the folder holds several save names")
    p.add_argument("--json", action="store_true", help="print findings.json instead of the readable report")
    p.set_defaults(func=analyze_command)


def analyze_command(args) -> int:
    from pai_sweep.analysis.api import analyze, default_out_dir, findings_document, write_outputs
    from pai_sweep.analysis.report import render

    result = analyze(args.path, save_name=args.save_name)
    out_dir = args.out or default_out_dir(args.path)
    written = write_outputs(result, out_dir)
    if args.json:
        print(json.dumps(findings_document(result), indent=2))
    else:
        print(render(result, markdown=False), end="")
        print(f"\nwrote {', '.join(p.name for p in written)} to {out_dir}")
    return 0
