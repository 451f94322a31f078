"""Image data on disk: torchvision's CIFAR-10/100 (python-pickle batches) and image folders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset, Subset
from torchvision import datasets, transforms

from pai_sweep.data.checks import CIFAR_FOLDERS
from pai_sweep.data.tensors import ImageTensors, seeded_split
from pai_sweep.errors import DataError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm")


def _present_files(cls):
    """torchvision's CIFAR class that checks the batch files exist instead of their checksums.

    torchvision still verifies the archive's checksum when it downloads; this lets a copy
    converted or trimmed by the user (and the tests' small files) load in the same layout.
    """

    class Present(cls):
        def _check_integrity(self) -> bool:
            folder = Path(self.root) / self.base_folder
            return all((folder / name).is_file() for name, _ in self.train_list + self.test_list + [[self.meta["filename"], None]])

        def _load_meta(self) -> None:
            import pickle

            with open(Path(self.root) / self.base_folder / self.meta["filename"], "rb") as f:
                self.classes = pickle.load(f, encoding="latin1")[self.meta["key"]]
            self.class_to_idx = {c: i for i, c in enumerate(self.classes)}

    return Present


def cifar(spec) -> tuple[Dataset, Dataset, Dataset, int]:
    """(train, val, test, num_classes): val held out of the official train split by data.seed; test = official test."""
    cls = _present_files(datasets.CIFAR10 if spec.name == "cifar10" else datasets.CIFAR100)
    root = str(Path(str(spec.root or ".")).expanduser())
    try:
        train_set = cls(root, train=True, download=bool(spec.download))
        test_set = cls(root, train=False, download=False)
    except Exception as exc:  # RuntimeError (missing files), URLError (offline), pickle errors
        reason = " ".join(str(exc).split()) or type(exc).__name__
        # with data.download=true already set, the download itself failed (offline): advise what can still work
        fetch = ("the download failed (no internet?): download it where there is internet and copy it there"
                 if spec.download else "set data.download=true (needs internet)")
        raise DataError(
            f"data={spec.name} cannot be read from data.root={root!r} ({reason}): put {CIFAR_FOLDERS[spec.name]}/ there, "
            f"{fetch}, or use data=digits32 offline"
        ) from exc

    def tensors(ds) -> ImageTensors:
        images = torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous()  # uint8 [N, 3, 32, 32]
        return ImageTensors(images, torch.tensor(ds.targets), size=spec.image_size)

    full = tensors(train_set)
    val, train = seeded_split(len(full), (spec.val_fraction,), spec.seed, full.labels.numpy())
    return Subset(full, train.tolist()), Subset(full, val.tolist()), tensors(test_set), len(train_set.classes)


def _readable_image(path: str):
    """torchvision's default image loader, with a file that is not an image as one DataError naming it and the fix."""
    from PIL import Image, UnidentifiedImageError

    try:
        with open(path, "rb") as f:
            return Image.open(f).convert("RGB")
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:  # PIL raises all of these on broken files
        raise DataError(f"data: {path} is not a readable image ({type(exc).__name__}); replace or remove it") from exc


def image_folder(spec) -> tuple[Dataset, Dataset, Dataset, int]:
    """root/train/<class>/*, root/val/<class>/* and root/test/<class>/*; a missing val or test is held out of train."""
    root = Path(str(spec.root)).expanduser()
    size = spec.image_size or _first_image_side(root / "train")
    # one size and RGB for every image, so batches stack
    to_tensor = transforms.Compose([transforms.Resize((size, size)), transforms.ToTensor()])
    splits = {}
    for split in ("train", "val", "test"):
        if (root / split).is_dir():
            try:
                splits[split] = datasets.ImageFolder(str(root / split), transform=to_tensor, loader=_readable_image)
            except (FileNotFoundError, RuntimeError) as exc:
                reason = " ".join(str(exc).split())
                raise DataError(f"data.root={str(spec.root)!r}: {split}/ holds no images ({reason}); put images in {split}/<class>/") from exc
    classes = splits["train"].classes
    for split in ("val", "test"):
        if split in splits and splits[split].classes != classes:
            raise DataError(f"data.root={str(spec.root)!r}: {split}/ has classes {splits[split].classes}, train/ has {classes}; use the same class folders")
    train = splits["train"]
    targets = train.targets
    fractions = (spec.val_fraction if "val" not in splits else 0.0, spec.test_fraction if "test" not in splits else 0.0)
    held_val, held_test, rest = seeded_split(len(train), fractions, spec.seed, np.array(targets))
    val = splits["val"] if "val" in splits else Subset(train, held_val.tolist())
    test = splits["test"] if "test" in splits else Subset(train, held_test.tolist())
    if len(val) == 0 or len(test) == 0:
        raise DataError(f"data.root={str(spec.root)!r}: no validation or test images; add val/ and test/ folders or raise data.val_fraction/test_fraction")
    return Subset(train, rest.tolist()), val, test, len(classes)


def _first_image_side(folder: Path) -> int:
    from PIL import Image

    for path in sorted(folder.rglob("*")):
        if path.suffix.lower() in IMAGE_SUFFIXES:
            with Image.open(path) as image:
                return max(image.size)
    raise DataError(f"data.root: {folder} holds no images ({', '.join(IMAGE_SUFFIXES[:3])}, ...); put images in train/<class>/")
