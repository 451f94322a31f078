"""load_data: digits splits are fixed and disjoint; MNIST-1D is generated offline and cached; CIFAR and image folders read their real on-disk layouts; bad input is one line."""

from __future__ import annotations

import pickle
import re
import socket
import sys

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from pai_sweep.compose import compose, conf_dir
from pai_sweep.data import load_data
from pai_sweep.errors import DataError


def indices(loader) -> set[int]:
    return set(loader.dataset.indices)


def labels_in_order(loader) -> list[int]:
    return [int(y) for _, ys in loader for y in ys]


def write_cifar(root, name: str = "cifar10", per_file: int = 6) -> None:
    """Tiny files in the python-pickle layout torchvision downloads (uint8 rows of 3*32*32, labels, meta)."""
    rng = np.random.default_rng(0)
    if name == "cifar10":
        folder, files, label_key, meta = root / "cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"], "labels", ("batches.meta", "label_names", 10)
    else:
        folder, files, label_key, meta = root / "cifar-100-python", ["train", "test"], "fine_labels", ("meta", "fine_label_names", 100)
    folder.mkdir(parents=True)
    for file in files:
        batch = {"data": rng.integers(0, 256, (per_file, 3072), dtype=np.uint8), label_key: [i % meta[2] for i in range(per_file)]}
        (folder / file).write_bytes(pickle.dumps(batch))
    (folder / meta[0]).write_bytes(pickle.dumps({meta[1]: [f"class{i}" for i in range(meta[2])]}))


def write_image_folder(root, splits=("train", "val"), classes=("cat", "dog"), per_class: int = 4) -> None:
    from PIL import Image

    for split in splits:
        for c, cls in enumerate(classes):
            (root / split / cls).mkdir(parents=True)
            for i in range(per_class):
                Image.new("RGB", (10, 12), (40 * c + i, 100, 200)).save(root / split / cls / f"{i}.png")


def test_digits_splits_are_fixed_disjoint_and_stratified():
    a = load_data({"name": "digits"}, batch_size=64, seed=0)
    b = load_data({"name": "digits"}, batch_size=64, seed=0)
    assert (a.input_shape, a.num_classes, a.task) == ((1, 8, 8), 10, "classification")
    parts = [indices(a.train), indices(a.val), indices(a.test)]
    assert sum(map(len, parts)) == 1797 and len(set().union(*parts)) == 1797
    assert [indices(b.train), indices(b.val), indices(b.test)] == parts
    assert len(set(labels_in_order(a.test))) == 10  # every class held out
    other = load_data({"name": "digits", "seed": 1}, batch_size=64, seed=0)
    assert indices(other.val) != parts[1]
    x, y = next(iter(a.train))
    assert x.shape == (64, 1, 8, 8) and x.dtype == torch.float32 and 0 <= x.min() and x.max() <= 1 and y.dtype == torch.long


def test_train_order_follows_the_seed_and_eval_order_is_fixed():
    run = lambda seed: load_data({"name": "digits", "limit": 200}, batch_size=32, seed=seed)  # noqa: E731
    assert labels_in_order(run(3).train) == labels_in_order(run(3).train)
    assert labels_in_order(run(3).train) != labels_in_order(run(4).train)
    assert labels_in_order(run(3).val) == labels_in_order(run(4).val)


def test_digits32_is_the_same_split_upscaled():
    small = load_data({"name": "digits"}, batch_size=16, seed=0)
    big = load_data({"name": "digits32", "limit": 100}, batch_size=16, seed=0)
    assert big.input_shape == (3, 32, 32) and big.num_classes == 10
    assert indices(big.val) == indices(small.val) and len(big.train.dataset) == 100
    assert indices(big.train) <= indices(small.train)  # the limit picks from the same training split
    x, _ = next(iter(big.val))
    assert x.shape == (16, 3, 32, 32) and torch.equal(x[:, 0], x[:, 2]) and x.max() <= 1


def test_lone_last_sample_is_dropped_for_batchnorm():
    bundle = load_data({"name": "digits", "limit": 65}, batch_size=64, seed=0)
    assert [len(y) for _, y in bundle.train] == [64]


def _mnist1d_offline(monkeypatch, cache) -> list[int]:
    """No network, mnist1d's downloading get_dataset refused, XDG_CACHE_HOME=cache; returns make_dataset's call log."""
    import mnist1d.data

    def no_network(*args, **kwargs):
        raise AssertionError("data=mnist1d tried to reach the network")

    monkeypatch.setattr(socket, "socket", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(mnist1d.data, "get_dataset", no_network)
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    calls, make = [], mnist1d.data.make_dataset
    monkeypatch.setattr(mnist1d.data, "make_dataset", lambda args: calls.append(args.seed) or make(args))
    return calls


def test_mnist1d_is_generated_offline_with_the_published_split(tmp_path, monkeypatch):
    calls = _mnist1d_offline(monkeypatch, tmp_path)
    rng_before = np.random.get_state()[1].copy()
    bundle = load_data({"name": "mnist1d"}, batch_size=50, seed=0)
    assert calls == [42]  # the published generator seed
    assert np.array_equal(np.random.get_state()[1], rng_before)  # the caller's numpy stream is untouched
    assert (bundle.input_shape, bundle.num_classes, bundle.task) == ((1, 40), 10, "classification")
    train, val = indices(bundle.train), indices(bundle.val)
    assert len(train) + len(val) == 4000 and len(val) == 800 and not train & val and len(bundle.test.dataset) == 1000
    assert np.bincount(labels_in_order(bundle.val)).min() >= 70  # stratified: ~80 of each class
    x, y = next(iter(bundle.test))
    assert x.shape == (50, 1, 40) and x.dtype == torch.float32 and y.dtype == torch.long
    (cached,) = (tmp_path / "pai-sweep").glob("mnist1d-*.npz")
    assert not list((tmp_path / "pai-sweep").glob("*.tmp"))  # written under a temporary name, then renamed
    again = load_data({"name": "mnist1d", "limit": 300}, batch_size=50, seed=0)
    assert calls == [42]  # the second load reads the cache
    assert len(again.train.dataset) == 300 and indices(again.train) <= train and indices(again.val) == val
    assert torch.equal(next(iter(again.test))[0], x)
    other = load_data({"name": "mnist1d", "seed": 1}, batch_size=50, seed=0)
    assert indices(other.val) != val and len(other.test.dataset) == 1000


def test_mnist1d_regenerates_a_cache_it_cannot_read(tmp_path, monkeypatch):
    calls = _mnist1d_offline(monkeypatch, tmp_path)
    load_data({"name": "mnist1d", "limit": 10}, batch_size=8, seed=0)
    (cached,) = (tmp_path / "pai-sweep").glob("mnist1d-*.npz")
    cached.write_bytes(b"half a file")
    bundle = load_data({"name": "mnist1d", "limit": 10}, batch_size=8, seed=0)
    assert len(calls) == 2 and len(bundle.test.dataset) == 1000
    assert np.load(cached)["x"].shape == (4000, 40)  # rewritten whole


def test_mnist1d_without_the_package_is_one_line(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setitem(sys.modules, "mnist1d.data", None)  # what an absent package looks like to `import`
    with pytest.raises(DataError) as err:
        load_data({"name": "mnist1d"}, batch_size=8, seed=0)
    assert "data=mnist1d needs the mnist1d package" in str(err.value) and "pip install mnist1d" in str(err.value)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("name", ["cifar10", "cifar100"])
def test_cifar_reads_torchvisions_layout(name, tmp_path):
    write_cifar(tmp_path, name)
    bundle = load_data({"name": name, "root": str(tmp_path), "val_fraction": 0.25}, batch_size=8, seed=0)
    n_train = 30 if name == "cifar10" else 6
    assert bundle.input_shape == (3, 32, 32) and bundle.num_classes == (10 if name == "cifar10" else 100)
    assert len(bundle.train.dataset) + len(bundle.val.dataset) == n_train and len(bundle.test.dataset) == 6
    assert not indices(bundle.train) & indices(bundle.val)
    x, _ = next(iter(bundle.test))
    assert x.dtype == torch.float32 and 0 <= x.min() and x.max() <= 1
    resized = load_data({"name": name, "root": str(tmp_path), "image_size": 16}, batch_size=8, seed=0)
    assert resized.input_shape == (3, 16, 16)


def test_cifar_offline_without_data_says_what_to_do(tmp_path):
    with pytest.raises(DataError) as err:
        load_data({"name": "cifar10", "root": str(tmp_path / "none")}, batch_size=8, seed=0)
    message = str(err.value)
    assert "data.download=false" in message and "data.root" in message and "data=digits32" in message and "\n" not in message


def test_cifar_download_that_fails_offline_does_not_advise_download(tmp_path, monkeypatch):
    import socket

    def refuse(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(socket.socket, "connect", refuse)  # offline, at once
    with pytest.raises(DataError) as err:
        load_data({"name": "cifar10", "root": str(tmp_path / "none"), "download": True}, batch_size=8, seed=0)
    message = str(err.value)
    assert "the download failed" in message and "set data.download=true" not in message
    assert "data=digits32" in message and "\n" not in message


def test_a_corrupt_image_is_named_with_the_fix(tmp_path):
    write_image_folder(tmp_path / "pics")
    broken = sorted((tmp_path / "pics" / "train").rglob("*.*"))[0]
    broken.write_bytes(b"not an image at all")
    with pytest.raises(DataError) as err:  # the folder is read into tensors up front: the error comes before any training
        bundle = load_data({"name": "image_folder", "root": str(tmp_path / "pics"), "image_size": 16}, batch_size=64, seed=0)
        for _ in bundle.train:
            pass
    assert str(broken) in str(err.value) and "replace or remove it" in str(err.value) and "shapes" not in str(err.value)


def test_image_folder_holds_out_a_missing_test_split(tmp_path):
    write_image_folder(tmp_path / "pics")
    bundle = load_data({"name": "image_folder", "root": str(tmp_path / "pics"), "image_size": 16, "test_fraction": 0.25}, batch_size=4, seed=0)
    assert bundle.input_shape == (3, 16, 16) and bundle.num_classes == 2
    assert len(bundle.val.dataset) == 8 and len(bundle.test.dataset) == 2 and len(bundle.train.dataset) == 6
    assert not indices(bundle.train) & indices(bundle.test)
    native = load_data({"name": "image_folder", "root": str(tmp_path / "pics")}, batch_size=4, seed=0)
    assert native.input_shape == (3, 12, 12)  # no image_size: the first image's longer side


@pytest.mark.parametrize(
    "cfg,needle",
    [
        ({"name": "image_folder", "root": "/no/such/pics"}, "data.root='/no/such/pics' does not exist"),
        ({"name": "image_folder"}, "data=image_folder needs data.root=PATH"),
        ({"name": "mnist"}, "valid data sets: digits"),
        ({"name": "digits", "val_fraction": 0.7, "test_fraction": 0.4}, "sum < 1"),
        ({"name": "digits", "limit": 0}, "data.limit=0"),
        ({"name": "digits", "rooot": "x"}, "rooot"),
        ({"name": "custom"}, "data._target_=your.module.make_datasets"),
        ({"name": "custom", "_target_": "nopkg_xyz.make"}, "cannot be imported (No module named 'nopkg_xyz')"),
    ],
)
def test_bad_data_input_is_one_line(cfg, needle):
    with pytest.raises(DataError) as err:
        load_data(cfg, batch_size=8, seed=0)
    assert needle in str(err.value) and "\n" not in str(err.value)


def test_image_folder_class_mismatch_is_one_line(tmp_path):
    write_image_folder(tmp_path, splits=("train",))
    write_image_folder(tmp_path, splits=("val",), classes=("cat", "owl"))
    with pytest.raises(DataError, match="val/ has classes"):
        load_data({"name": "image_folder", "root": str(tmp_path)}, batch_size=4, seed=0)


def _user_data(tmp_path, monkeypatch, body: str) -> str:
    name = "data_" + re.sub(r"\W", "_", tmp_path.name)
    (tmp_path / f"{name}.py").write_text("import torch\nfrom torch.utils.data import TensorDataset\n" + body)
    monkeypatch.syspath_prepend(str(tmp_path))
    return name


def test_custom_data_gets_kwargs_and_holds_out_missing_splits(tmp_path, monkeypatch):
    module = _user_data(tmp_path, monkeypatch, (
        "def make(n, seed):\n"
        "    g = torch.Generator().manual_seed(seed)\n"
        "    ds = lambda k: TensorDataset(torch.rand(k, 5, generator=g), torch.arange(k) % 3)\n"
        "    return ds(n), None, ds(7)\n"
    ))
    bundle = load_data({"name": "custom", "_target_": f"{module}.make", "kwargs": {"n": 40}, "val_fraction": 0.25}, batch_size=8, seed=0)
    assert (bundle.input_shape, bundle.num_classes) == ((5,), 3)
    assert len(bundle.train.dataset) == 30 and len(bundle.val.dataset) == 10 and len(bundle.test.dataset) == 7


def test_custom_data_with_the_wrong_return_is_one_line(tmp_path, monkeypatch):
    module = _user_data(tmp_path, monkeypatch, "def make():\n    return [1, 2]\n")
    with pytest.raises(DataError, match=r"must return \(train, val, test\)"):
        load_data({"name": "custom", "_target_": f"{module}.make"}, batch_size=8, seed=0)


CUSTOM_DATA = "def make():\n    return (TensorDataset(torch.rand(8, 2), torch.arange(8) % 2),) * 3\n"


@pytest.mark.parametrize("option", sorted(p.stem for p in (conf_dir() / "data").glob("*.yaml")))
def test_every_data_option_composes_and_loads(option, tmp_path, monkeypatch):
    # what each option needs on disk; a new option without an entry fails here on purpose
    needs = {
        "digits": lambda: [], "digits32": lambda: [],
        "mnist1d": lambda: [] if monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path)) is None else [],
        "cifar10": lambda: [f"data.root={tmp_path}"] if write_cifar(tmp_path, option) is None else [],
        "cifar100": lambda: [f"data.root={tmp_path}"] if write_cifar(tmp_path, option) is None else [],
        "image_folder": lambda: [f"data.root={tmp_path / 'pics'}"] if write_image_folder(tmp_path / "pics") is None else [],
        "custom": lambda: [f"data._target_={_user_data(tmp_path, monkeypatch, CUSTOM_DATA)}.make"],
    }[option]()
    cfg = compose([f"data={option}", *needs])
    bundle = load_data(cfg.data, batch_size=cfg.train.batch_size, seed=cfg.train.seed)
    x, y = next(iter(bundle.train))
    assert tuple(x.shape[1:]) == bundle.input_shape and int(y.max()) < bundle.num_classes
    assert OmegaConf.is_config(cfg.data)
