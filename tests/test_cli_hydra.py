"""`pai-sweep` keeps Hydra's command-line conventions: --cfg/--resolve/--package/--info/--help, hydra.run.dir,
"did you mean" for an unknown key; the subcommands still work."""

from __future__ import annotations

import yaml

from pai_sweep.cli import main
from pai_sweep.compose import compose, recipe_names

GROUPS = ("model", "downsize", "dendrites", "data", "train", "sweep", "objective", "launcher", "tracking", "recipe")


def run(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cfg_job_hydra_all_resolve_package(capsys):
    code, out, err = run(capsys, "--cfg", "job")
    assert code == 0 and err == ""
    job = yaml.safe_load(out)
    assert set(GROUPS[:-1]) <= set(job) and "hydra" not in job and job["model"]["name"] == "small_cnn"
    code, out, _ = run(capsys, "+recipe=resnet_efficiency", "--cfg", "job")
    assert code == 0 and yaml.safe_load(out)["model"]["name"] == "resnet50"
    code, out, _ = run(capsys, "sweep", "model=mlp", "--cfg", "job", "--package", "model")
    assert code == 0 and out.startswith("# @package model") and yaml.safe_load(out)["name"] == "mlp"
    code, out, _ = run(capsys, "--cfg", "hydra")
    assert code == 0 and set(yaml.safe_load(out)) == {"hydra"}
    code, out, _ = run(capsys, "--cfg", "all", "--resolve", "-p", "_global_")
    both = yaml.safe_load(out)
    assert code == 0 and {"hydra", "model"} <= set(both) and "${" not in out


def test_info_and_help_list_every_group_and_recipe(capsys):
    code, out, _ = run(capsys, "--info", "defaults")
    assert code == 0 and "Defaults List" in out and "model/small_cnn" in out
    for argv in (["--help"], ["sweep", "--help"], ["-h"]):
        code, out, err = run(capsys, *argv)
        assert code == 0 and err == "", argv
        groups = out.split("== Configuration groups ==")[1].split("== Recipes ==")[0]
        lines = {ln.split(":", 1)[0]: ln.split(":", 1)[1] for ln in groups.splitlines() if ":" in ln}
        for group in GROUPS:
            assert group in lines, (group, argv)
        assert "mlp" in lines["model"] and "efficiency" in lines["objective"] and "slurm" in lines["launcher"]
        assert all(f"  {name}: " in out for name in recipe_names())
        assert "analyze" in out and "--cfg" in out and "--multirun" not in out
        commands = next(ln for ln in out.splitlines() if "pai-sweep COMMAND" in ln)
        from pai_sweep.cli import SUBCOMMANDS

        assert all(f" {name} " in commands for name in SUBCOMMANDS if name != "sweep"), commands


def test_hydra_run_dir_is_the_sweep_folder(tmp_path, capsys):
    assert compose([f"hydra.run.dir={tmp_path / 'x'}"]).sweep.dir == str(tmp_path / "x")
    code, _, err = run(capsys, f"hydra.run.dir={tmp_path / 'x'}", f"sweep.dir={tmp_path / 'y'}", "--cfg", "job")
    assert code == 2 and err.count("\n") == 1 and "keep one (sweep.dir)" in err


def test_unknown_key_gets_did_you_mean(capsys):
    code, out, err = run(capsys, "dendrites.max_dendrite=3")
    assert code == 2 and err.count("\n") == 1 and out == ""
    assert "did you mean dendrites.max_dendrites=3?" in err and "To append" not in err
    code, _, err = run(capsys, "model=mlp", "model.hiden=[8]", "--cfg", "job")
    assert code == 2 and "did you mean model.hidden=[8]?" in err


def test_subcommands_still_work(capsys):
    code, out, _ = run(capsys, "recipes")
    assert code == 0 and "resnet_efficiency" in out
    code, out, _ = run(capsys, "env")
    assert code == 0 and "optuna" in out.lower()


def complete(capsys, monkeypatch, line):
    """What Tab offers: Hydra's completion reads the line from COMP_LINE, as the installed bash script sets it."""
    monkeypatch.setenv("COMP_LINE", line)
    code, out, err = run(capsys, "-sc", "query=bash")
    assert code == 0 and err == "", (line, err)
    return out.split()


def test_shell_completion_offers_groups_options_recipes_and_subcommands(capsys, monkeypatch):
    assert complete(capsys, monkeypatch, "pai-sweep mod") == ["model.", "model="]
    options = complete(capsys, monkeypatch, "pai-sweep model=")
    assert "model=mlp" in options and "model=small_cnn" in options and all(o.startswith("model=") for o in options)
    assert complete(capsys, monkeypatch, "pai-sweep sweep model=m") == ["model=mlp", "model=mobilenet_v2"]
    assert complete(capsys, monkeypatch, "pai-sweep +recipe=") == [f"+recipe={n}" for n in recipe_names()]
    assert "dendrites.max_dendrites=" in complete(capsys, monkeypatch, "pai-sweep model=mlp dendrites.max")
    first = complete(capsys, monkeypatch, "pai-sweep ")
    assert {"analyze", "report", "model=", "dendrites.", "recipe="} <= set(first)
    assert complete(capsys, monkeypatch, "pai-sweep analyze sweeps/") == []  # the shell's file names instead


def test_shell_completion_install_works_in_bash(tmp_path):
    """The script `pai-sweep -sc install=bash` prints, evaluated by a real bash, fills COMPREPLY from the app."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    bindir = Path(sys.executable).parent
    assert (bindir / "pai-sweep").exists(), "the pai-sweep entry point is installed next to the interpreter"
    script = (
        'eval "$(pai-sweep --shell-completion install=bash)"; complete -p pai-sweep; '
        'COMP_LINE="pai-sweep model=resnet"; COMP_POINT=${#COMP_LINE}; COMP_CWORD=1; '
        'hydra_bash_completion; printf "<%s>\\n" "${COMPREPLY[@]}"'
    )
    env = {**os.environ, "PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}"}
    proc = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    assert "-F hydra_bash_completion pai-sweep" in proc.stdout
    assert proc.stdout.splitlines()[1:] == ["<model=resnet18>", "<model=resnet34>", "<model=resnet50>"]


def test_shell_completion_bad_use_is_one_line(capsys):
    code, _, err = run(capsys, "-sc", "install=tcsh")
    assert code == 2 and err.count("\n") == 1 and "bash, fish, zsh" in err
    code, _, err = run(capsys, "--shell-completion")
    assert code == 2 and err.count("\n") == 1 and "install=SHELL" in err


def test_help_copies_the_config_repository_once_per_use(capsys, monkeypatch):
    """Hydra deep-copies the whole config repository (ConfigStore with the schema and recipes) for each group it
    lists: ~100 copies made `pai-sweep --help` take seconds. One copy per (config, overrides) now serves them."""
    from hydra._internal.config_repository import CachingConfigRepository

    copies = []
    init = CachingConfigRepository.__init__
    monkeypatch.setattr(CachingConfigRepository, "__init__", lambda self, delegate: (copies.append(1), init(self, delegate))[1])
    code, out, _ = run(capsys, "--help")
    assert code == 0 and "model: " in out and "== Recipes ==" in out
    assert len(copies) <= 3, len(copies)
    copies.clear()
    monkeypatch.setenv("COMP_LINE", "pai-sweep ")
    code, out, _ = run(capsys, "-sc", "query=bash")
    assert code == 0 and "model=" in out.split() and len(copies) <= 2, len(copies)
