"""Small dataset types and the seeded splits every source shares."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset, Subset


class ImageTensors(Dataset):
    """Images held as one uint8 or float tensor [N, C, H, W]; items come out as float in [0, 1], resized if asked."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, size: int | None = None, channels: int | None = None):
        self.images, self.labels = images, labels.long()
        self.size, self.channels = size, channels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int):
        image = self.images[index]
        image = image.float() / 255.0 if image.dtype == torch.uint8 else image.float()
        if self.size and tuple(image.shape[-2:]) != (self.size, self.size):
            image = torch.nn.functional.interpolate(image[None], size=(self.size, self.size), mode="bilinear", align_corners=False)[0]
        if self.channels and image.shape[0] != self.channels:
            image = image.expand(self.channels, -1, -1).contiguous()  # grey -> RGB by repetition
        return image, self.labels[index]


def seeded_split(n: int, fractions: tuple[float, ...], seed: int, labels: np.ndarray | None = None) -> list[np.ndarray]:
    """Index arrays: one per fraction, the rest last. Stratified by `labels` when given; the same for the same seed."""
    from sklearn.model_selection import train_test_split

    rest = np.arange(n)
    parts = []
    for i, fraction in enumerate(fractions):
        if fraction <= 0:
            parts.append(np.arange(0))
            continue
        share = fraction / (1 - sum(fractions[:i]))  # of what is left
        stratify = labels[rest] if labels is not None else None
        try:
            rest, part = train_test_split(rest, test_size=share, random_state=seed + i, stratify=stratify)
        except ValueError:  # too few samples of a class to stratify: split plainly
            rest, part = train_test_split(rest, test_size=share, random_state=seed + i)
        parts.append(np.sort(part))
    return parts + [np.sort(rest)]


def capped(dataset: Dataset, limit: int | None, seed: int) -> Dataset:
    """At most `limit` samples, a seeded random choice (all of them when limit is None or large)."""
    if limit is None or limit >= len(dataset):
        return dataset
    keep = sorted(torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed))[:limit].tolist())
    if isinstance(dataset, Subset):  # one level of indices into the full data, not a subset of a subset
        return Subset(dataset.dataset, [dataset.indices[i] for i in keep])
    return Subset(dataset, keep)
