"""Every config option and every recipe composes and validates; the wheel carries conf/ and recipes/."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from pai_sweep.compose import compose, conf_dir, recipe_names, recipe_purpose
from pai_sweep.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]
OPTIONS = sorted(
    (group.name, path.stem)
    for group in conf_dir().iterdir()
    if group.is_dir()
    for path in group.glob("*.yaml")
)
# Options that need a value the user must give (a _target_ or a folder) are checked with one.
REQUIRED = {
    ("model", "custom"): ["model._target_=torch.nn.Identity"],
    ("data", "custom"): ["data._target_=builtins.tuple"],
    ("data", "image_folder"): ["data.root=/some/folder"],
    ("downsize", "family"): ["model=resnet50"],  # a family swap needs a model with a smaller family
}


def test_groups_found():
    groups = {g for g, _ in OPTIONS}
    assert {"model", "downsize", "dendrites", "data", "train", "sweep", "objective", "launcher", "tracking"} <= groups


@pytest.mark.parametrize("group,option", OPTIONS, ids=[f"{g}={o}" for g, o in OPTIONS])
def test_every_option_composes(group, option):
    cfg = compose([f"{group}={option}", *REQUIRED.get((group, option), [])])
    # the option's own values are what the composed, schema-typed group holds
    written = OmegaConf.to_container(OmegaConf.load(conf_dir() / group / f"{option}.yaml"))
    composed = OmegaConf.to_container(cfg[group], resolve=True)
    for key, value in written.items():
        if value is not None and value != "???":
            assert composed[key] == value, f"{group}={option}: {key}"


@pytest.mark.parametrize("name", recipe_names())
def test_every_recipe_composes_and_documents_itself(name):
    cfg = compose([f"+recipe={name}"])
    command, purpose = recipe_purpose(name)
    assert command.startswith("pai-sweep") and f"+recipe={name}" in command
    assert purpose, f"recipes/{name}.yaml needs a one-line purpose on its second line"
    assert cfg.sweep.n_trials > 0


@pytest.mark.parametrize(
    "override,needle",
    [
        ("model.hiden=3", "model.hiden"),
        ("model=resnet99", "resnet99"),
        ("train.batch_size=many", "train.batch_size"),
        ("dendrites.switch_mode=sometimes", "dendrites.switch_mode"),
        ("dendrites.module_ids_to_track=[conv1]", "must start with '.'"),
        ("+recipe=no_such_recipe", "available recipes"),
    ],
)
def test_bad_input_is_one_clear_line(override, needle):
    with pytest.raises(ConfigError) as err:
        compose([override])
    message = str(err.value)
    assert needle in message and "\n" not in message


def test_wheel_ships_conf_and_recipes(tmp_path):
    """A non-editable install finds conf/ and recipes/ inside the package."""
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), str(REPO)],
        check=True,
    )
    wheel = next(tmp_path.glob("pai_sweep-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "pai_sweep/conf/config.yaml" in names
    assert any(n.startswith("pai_sweep/recipes/") for n in names)
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel)], check=True)
    env = {"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"}
    out = subprocess.run(
        [sys.executable, "-c", "import pai_sweep.compose as c; print(c.conf_dir()); print(c.recipe_names()); "
         "print([c.compose(['+recipe=' + r]).sweep.name for r in c.recipe_names()])"],
        capture_output=True, text=True, env=env, cwd=tmp_path, check=True,
    ).stdout
    assert str(target) in out.splitlines()[0]
    for name in recipe_names():
        assert name in out.splitlines()[1]
        assert f"'{name}'" in out.splitlines()[2], "every recipe composes from the installed wheel"


def test_search_space_keys_added_or_replaced_from_the_shell():
    added = compose(["sweep.space={dendrites.max_dendrite_tries:{type:int,low:1,high:3}}"])
    assert "dendrites.max_dendrite_tries" in added.sweep.space and "dendrites.max_dendrites" in added.sweep.space
    only = compose(["sweep=empty", "sweep.space={dendrites.max_dendrite_tries:{type:int,low:1,high:3}}"])
    assert list(only.sweep.space) == ["dendrites.max_dendrite_tries"]
    with pytest.raises(ConfigError, match="did you mean dendrites.max_dendrite_tries"):  # the rest stays closed to typos
        compose(["dendrites.max_dendrite_trys=2"])
