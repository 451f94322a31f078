"""What every benchmark shares: the machine and its load, timed commands, JSON + markdown results.

Each benchmark measures both sides in one run on one machine (interleaved where it can) and
reports ratios; absolute seconds depend on the machine and on what else runs on it, so every
result records the load average sampled while it ran.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Iterable, Sequence

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "benchmarks"
RESULTS = BENCH / "results"
CONF = BENCH / "conf"  # sweep options for the benchmarks, used through hydra.searchpath
PLUGINS = BENCH / ".plugins"  # hydra-optuna-sweeper + hydra-joblib-launcher, installed --no-deps, never on the tool's path


def searchpath_override() -> str:
    """The Hydra override that makes benchmarks/conf/sweep/*.yaml selectable as `sweep=<name>`."""
    return f"hydra.searchpath=[file://{CONF}]"


def pai_sweep_cmd() -> list[str]:
    """The console script beside this interpreter (what a user runs), else the module."""
    script = Path(sys.executable).parent / "pai-sweep"
    return [str(script)] if script.exists() else [sys.executable, "-m", "pai_sweep"]


def child_env(threads: int | None = None, **extra: str) -> dict[str, str]:
    """The environment for a measured child: repo importable, headless plotting, optional thread cap."""
    env = {**os.environ, "MPLBACKEND": "Agg", "PYTHONUNBUFFERED": "1"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    if threads is not None:
        for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            env[name] = str(threads)
    env.update(extra)
    return env


class LoadSampler:
    """Samples the 1-minute load average in the background while a measurement runs."""

    def __init__(self, every: float = 2.0):
        self.every, self.samples = every, []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append(os.getloadavg()[0])
            self._stop.wait(self.every)

    def __enter__(self) -> "LoadSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()

    def summary(self) -> dict[str, float]:
        s = self.samples or [os.getloadavg()[0]]
        return {"min": round(min(s), 2), "mean": round(sum(s) / len(s), 2), "max": round(max(s), 2), "samples": len(s)}


def _version(module: str) -> str | None:
    try:
        from importlib.metadata import version

        return version(module)
    except Exception:  # noqa: BLE001 - a missing package is reported as None
        return None


def machine_info() -> dict[str, Any]:
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gb = None
    try:
        mem_gb = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError):
        pass
    commit = None
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True, timeout=10).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        pass
    return {
        "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "host_cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": mem_gb,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": {name: _version(name) for name in ("pai-sweep", "torch", "perforatedai", "optuna", "hydra-core", "mlflow")},
        "commit": commit,
    }


def run_timed(cmd: Sequence[str], cwd: Path, env: dict[str, str] | None = None, log: Path | None = None,
              timeout: float | None = None) -> dict[str, Any]:
    """Run `cmd`, return wall seconds, exit code and the output's tail (the whole output goes to `log`)."""
    cwd.mkdir(parents=True, exist_ok=True)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.time()
    proc = subprocess.run(list(cmd), cwd=cwd, env=env or child_env(), stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout)
    t1 = time.time()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    # CPU seconds of the command and every descendant it waited for: far less sensitive than
    # wall time to other work on a shared machine
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if log is not None:
        log.write_text(proc.stdout)
    return {"start": t0, "end": t1, "seconds": round(t1 - t0, 3), "cpu_seconds": round(cpu, 3), "rc": proc.returncode,
            "tail": proc.stdout[-2000:]}


def check_ok(run: dict[str, Any], what: str) -> None:
    if run["rc"] != 0:
        raise RuntimeError(f"{what} exited with {run['rc']}:\n{run['tail']}")


def fresh_dir(path: Path) -> Path:
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


def md_table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    def cell(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.3g}" if abs(v) < 1000 else f"{v:,.0f}"
        return str(v)

    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def header_md(title: str, result: dict[str, Any]) -> str:
    m, load = result["machine"], result.get("load", {})
    v = ", ".join(f"{k} {val}" for k, val in m["versions"].items() if val)
    return (
        f"# {title}\n\n"
        f"- command: `{result['command']}`\n"
        f"- machine: {m['host_cpu']}, {m['cores']} cores, {m['memory_gb']} GB; {m['platform']}; Python {m['python']}\n"
        f"- versions: {v}; commit {m['commit']}\n"
        f"- date: {m['date']}; load average while measuring (1 min): "
        f"min {load.get('min')}, mean {load.get('mean')}, max {load.get('max')}\n"
    )


def write_result(name: str, result: dict[str, Any], markdown: str, out_dir: Path | None = None) -> Path:
    """results/<name>.json and results/<name>.md (or in `out_dir`); returns the JSON path."""
    out = Path(out_dir) if out_dir is not None else RESULTS
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.json"
    path.write_text(json.dumps(result, indent=2, sort_keys=True, default=str) + "\n")
    (out / f"{name}.md").write_text(markdown.rstrip() + "\n")
    return path


def base_parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true", help="a shrunk run that checks the benchmark works (numbers mean little)")
    p.add_argument("--out", type=Path, default=None, help="where the JSON + markdown go (default benchmarks/results/)")
    p.add_argument("--work", type=Path, default=None, help="scratch folder for the runs (default: a temporary folder)")
    return p


def command_line() -> str:
    argv = sys.argv[1:]
    return " ".join(["python -m benchmarks." + Path(sys.argv[0]).stem, *argv])


def ratio(a: float, b: float) -> float | None:
    return round(a / b, 3) if b else None


def training_seconds(trial_dir: Path) -> float:
    """A trial's pure training seconds (forward, backward, scoring; no bookkeeping, no start-up): the sum of its
    epochs' compute_seconds (metrics.jsonl), or the hand-written script's own sum (plain_result.json)."""
    plain = Path(trial_dir) / "plain_result.json"
    if plain.exists():
        return float(json.loads(plain.read_text()).get("compute_seconds") or 0.0)
    from pai_sweep.trial_files import iter_metrics  # skips a torn last line, as every reader of the file does

    return sum(r.compute_seconds or 0.0 for r in iter_metrics(trial_dir))


def floor_ratio(wall: float, trial_dirs: Iterable[Path], slots: int) -> dict[str, float | None]:
    """The floor: the trials' summed pure training seconds spread over the slots; the ratio: wall / floor."""
    floor = sum(training_seconds(d) for d in trial_dirs) / max(1, slots)
    return {"floor_s": round(floor, 3), "floor_ratio": ratio(wall, floor) if floor > 0 else None}
