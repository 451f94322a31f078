"""The package has no import cycle, counting imports inside functions too (each one is a dependency a reader
must follow, and a cycle means neither side can be understood or tested alone), and keeps the import
contracts of docs/DESIGN.md (pyproject.toml's [tool.importlinter], checked by import-linter)."""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "pai_sweep"
ROOT = PKG.parent
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")  # installed with the dev extras


def module_name(path: Path) -> str:
    rel = path.relative_to(PKG.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def import_graph() -> dict[str, set[str]]:
    """module -> the pai_sweep modules it imports (`from X import y`: X, and X.y when that is a module)."""
    modules = {module_name(p): p for p in PKG.rglob("*.py")}
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets = []
            if isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative import
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                # the module named, and each imported name that is itself a module (`from pkg import mod`)
                targets = [base, *(f"{base}.{a.name}" for a in node.names)]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            for target in targets:
                if target in modules and target != name:
                    graph[name].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_pai_sweep_has_no_import_cycle():
    graph = import_graph()
    assert "pai_sweep.sweep.guidance" in graph and "pai_sweep.sweep.rule_policy" in graph["pai_sweep.sweep.guidance"]  # the graph sees edges
    assert cycles(graph) == []


def lint_imports(*config: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(LINT_IMPORTS), "--no-cache", "--no-logo", *map(str, config)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)


def contracts() -> dict[str, dict]:
    conf = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    assert conf["root_package"] == "pai_sweep" and conf["include_external_packages"] is True
    return {c["id"]: c for c in conf["contracts"]}


def test_import_contracts_hold():
    done = lint_imports()
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert f"Contracts: {len(contracts())} kept, 0 broken." in done.stdout


def test_every_contract_of_the_design_is_there():
    """Removing or loosening a contract fails here: each one pinned by what it says."""
    c = contracts()
    assert {i: x["type"] for i, x in c.items()} == {
        "perforatedai-adapter": "protected", "submitit-launcher": "protected", "mlflow-tracking": "protected",
        "worker-no-optuna": "forbidden", "layers": "layers",
    }
    owners = {i: (x["protected_modules"], x["allowed_importers"]) for i, x in c.items() if x["type"] == "protected"}
    assert owners == {
        "perforatedai-adapter": (["perforatedai"], ["pai_sweep.perforate"]),
        "submitit-launcher": (["submitit"], ["pai_sweep.launchers.slurm"]),
        "mlflow-tracking": (["mlflow"], ["pai_sweep.tracking.mlflow_map"]),
    }
    worker = c["worker-no-optuna"]
    assert set(worker["source_modules"]) == {"pai_sweep.worker", "pai_sweep.training"}
    assert {"optuna", "mlflow", "submitit"} <= set(worker["forbidden_modules"])
    assert not worker.get("allow_indirect_imports"), "the worker side counts what its imports import"
    layers = c["layers"]
    assert not layers.get("ignore_imports"), "a layer exception belongs in the code, not the contract"
    flat = [name.strip() for layer in layers["layers"] for name in layer.replace(":", "|").split("|")]
    assert flat[:3] == ["pai_sweep.__main__", "pai_sweep.cli", "pai_sweep.driver"]
    assert flat[-3:] == ["pai_sweep.trial_files", "pai_sweep.task", "pai_sweep.errors"]
    parts = ("sweep", "report", "tracking", "compose", "launchers", "worker", "training", "validate", "data",
             "models", "perforate", "analysis", "objective", "search_space", "schema")
    assert {f"pai_sweep.{p}" for p in parts} <= set(flat)


def test_lint_imports_reports_a_broken_contract(tmp_path):
    """The check is live: a contract the code breaks (the worker imports perforate) fails."""
    config = tmp_path / "contracts.toml"
    config.write_text('''[tool.importlinter]
root_package = "pai_sweep"

[[tool.importlinter.contracts]]
name = "worker without perforate"
type = "forbidden"
source_modules = ["pai_sweep.worker"]
forbidden_modules = ["pai_sweep.perforate"]
''')
    done = lint_imports(config)
    assert done.returncode == 1, done.stdout[-4000:] + done.stderr[-2000:]
    assert "pai_sweep.worker is not allowed to import pai_sweep.perforate" in done.stdout
