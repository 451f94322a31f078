"""scikit-learn's 8x8 digits (embedded, no download): 1x8x8, or 3x32x32 by bilinear upscaling (digits32)."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Subset

from pai_sweep.data.tensors import ImageTensors, seeded_split


def digits(spec, rgb: bool) -> tuple[Subset, Subset, Subset, int]:
    """(train, val, test, num_classes): a stratified split fixed by data.seed."""
    from sklearn.datasets import load_digits

    raw = load_digits()
    images = torch.from_numpy(raw.images.astype(np.float32) / 16.0).unsqueeze(1)  # [N, 1, 8, 8] in [0, 1]
    size = spec.image_size or (32 if rgb else None)
    if size and size != 8:
        # once for all 1,797 images (a few MB), not per item
        images = torch.nn.functional.interpolate(images, size=(size, size), mode="bilinear", align_corners=False).clamp_(0, 1)
    if rgb:
        images = images.expand(-1, 3, -1, -1).contiguous()
    data = ImageTensors(images, torch.from_numpy(raw.target))
    val, test, train = seeded_split(len(data), (spec.val_fraction, spec.test_fraction), spec.seed, raw.target)
    return Subset(data, train.tolist()), Subset(data, val.tolist()), Subset(data, test.tolist()), 10
