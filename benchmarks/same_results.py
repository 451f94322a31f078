"""Same results: the default sweep at two commits, trial by trial (a refactor must not change what a sweep finds).

Each commit is checked out into a temporary git worktree and runs the default sweep with one trial in flight
(told in a fixed order, so the sampler's suggestions depend only on what it was told), tracking and the
integration check off. Compared per trial: origin, state, objective values, params, the chosen dendrite count
and the findings' rule ids. Where branching is on (the default) a trial may start from another's state; its
values must still be those of the commit that trained it from scratch.

    python -m benchmarks.same_results --base 32933a5            # that commit against HEAD
    python -m benchmarks.same_results --base HEAD~3 --trials 6
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import common

KEYS = ("origin", "state", "values", "params", "chosen_dendrites", "findings")


def read_trials(study_db: Path) -> list[dict[str, Any]]:
    """Per trial: the compared fields and where it started, straight from the study's tables."""
    con = sqlite3.connect(study_db)
    rows: dict[int, dict[str, Any]] = {}
    for tid, number, state in con.execute("SELECT trial_id, number, state FROM trials ORDER BY number"):
        rows[tid] = {"number": number, "state": state, "values": [], "params": {}, "attrs": {}}
    for tid, value in con.execute("SELECT trial_id, value FROM trial_values ORDER BY trial_id, objective"):
        rows[tid]["values"].append(value)
    for tid, name, value in con.execute("SELECT trial_id, param_name, param_value FROM trial_params"):
        rows[tid]["params"][name] = value
    for tid, key, value in con.execute("SELECT trial_id, key, value_json FROM trial_user_attributes"):
        rows[tid]["attrs"][key] = json.loads(value)
    con.close()
    out = []
    for r in sorted(rows.values(), key=lambda r: r["number"]):
        a = r["attrs"]
        out.append({"number": r["number"], "origin": a.get("origin"), "state": r["state"], "values": r["values"],
                    "params": r["params"], "chosen_dendrites": a.get("chosen_dendrites"),
                    "findings": sorted(a.get("findings") or []), "branched_from": a.get("branched_from")})
    return out


def run_at(side: str, rev: str, work: Path, overrides: list[str]) -> dict[str, Any]:
    """The default sweep at `rev`, in a fresh folder of its own (`side`: base or head; the same commit twice trains twice)."""
    tree = work / f"tree-{side}"
    subprocess.run(["git", "worktree", "add", "--detach", "-f", str(tree), rev], cwd=common.REPO, check=True,
                   capture_output=True, text=True)
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=tree, capture_output=True, text=True).stdout.strip()
        sweep_dir = common.fresh_dir(work / f"sweep-{side}-{commit}")
        sweep_dir.rmdir()  # the sweep makes it: an existing folder would be resumed
        env = common.child_env(PYTHONPATH=str(tree))
        run = common.run_timed([sys.executable, "-m", "pai_sweep", *overrides, f"sweep.dir={sweep_dir}"], cwd=work, env=env,
                               log=work / f"{side}-{commit}.log")
        common.check_ok(run, f"the default sweep at {rev}")
        return {"rev": rev, "commit": commit, "seconds": run["seconds"], "trials": read_trials(sweep_dir / "study.db")}
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=common.REPO, capture_output=True)


def compare(base: list[dict[str, Any]], head: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per trial that differs (or exists on one side only), naming the fields."""
    diffs = []
    for i in range(max(len(base), len(head))):
        a = base[i] if i < len(base) else None
        b = head[i] if i < len(head) else None
        if a is None or b is None:
            diffs.append({"number": i, "fields": ["missing on " + ("base" if a is None else "head")]})
            continue
        fields = [k for k in KEYS if a[k] != b[k]]
        if fields:
            diffs.append({"number": i, "fields": fields, "base": {k: a[k] for k in fields}, "head": {k: b[k] for k in fields}})
    return diffs


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = common.base_parser(__doc__.splitlines()[0])
    p.add_argument("--base", default="HEAD", help="the commit to compare HEAD with (default HEAD: a self-check)")
    p.add_argument("--trials", type=int, default=None, help="sweep.n_trials (default 4; --quick 1)")
    args = p.parse_args(argv)
    n = args.trials or (1 if args.quick else 4)
    overrides = [f"sweep.n_trials={n}", "sweep.in_flight=1", "sweep.seed=0", "tracking=off", "sweep.check_first=false"]
    if args.quick:
        overrides += ["train.max_epochs=3"]
    work = args.work or Path(tempfile.mkdtemp(prefix="bench_same_"))
    work.mkdir(parents=True, exist_ok=True)
    with common.LoadSampler() as load:
        base, head = run_at("base", args.base, work, overrides), run_at("head", "HEAD", work, overrides)
    diffs = compare(base["trials"], head["trials"])
    result = {"benchmark": "same_results", "command": common.command_line(), "machine": common.machine_info(),
              "load": load.summary(), "quick": args.quick, "overrides": overrides, "base": base, "head": head,
              "differences": diffs, "headline": {"identical": not diffs, "trials": len(head["trials"]),
                                                 "branched_at_head": sum(1 for t in head["trials"] if t["branched_from"] is not None)}}
    common.write_result("same_results", result, markdown(result), args.out)
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)
    return result


def markdown(result: dict[str, Any]) -> str:
    h, base, head = result["headline"], result["base"], result["head"]
    rows = [(t["number"], t["origin"], t["state"], ", ".join(f"{v:.4g}" for v in t["values"]), t["chosen_dendrites"],
             t["branched_from"] if t["branched_from"] is not None else "") for t in head["trials"]]
    text = (common.header_md("Same results: the default sweep at two commits", result)
            + f"\n{base['rev']} ({base['commit']}) against {head['rev']} ({head['commit']}), {' '.join(result['overrides'])}.\n\n"
            + f"**{'identical' if h['identical'] else 'DIFFERENT'}** on every compared field ({', '.join(KEYS)}) over "
            f"{h['trials']} trials; {h['branched_at_head']} of them started from another trial's state at HEAD.\n\n"
            + common.md_table(["trial", "origin", "state", "values", "chosen dendrites", "branched from"], rows) + "\n")
    for d in result["differences"]:
        text += f"\n- trial {d['number']}: {', '.join(d['fields'])}"
    return text


if __name__ == "__main__":
    main()
