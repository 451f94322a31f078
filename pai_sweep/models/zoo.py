"""The project's own small models: mlp, small_cnn, transformer. Sized for digits, scalable by width/depth."""

from __future__ import annotations

import torch
from torch import nn

from pai_sweep.errors import ModelError


def scaled(width: int, mult: float, minimum: int = 1) -> int:
    """A width times the multiplier, rounded, never below `minimum`."""
    return max(minimum, int(round(width * mult)))


def _kept(items: list, depth: int | None) -> list:
    return list(items) if depth is None else list(items)[: max(1, depth)]


def _image_shape(name: str, input_shape: tuple[int, ...]) -> tuple[int, int, int]:
    if len(input_shape) != 3:
        raise ModelError(f"model={name} needs image data [C, H, W] but the data gives {tuple(input_shape)}; use model=mlp or model=transformer")
    return tuple(input_shape)  # type: ignore[return-value]


class MLP(nn.Module):
    """Flatten, then Linear-ReLU per hidden width, then a Linear head."""

    def __init__(self, input_shape: tuple[int, ...], num_classes: int, hidden: list[int], dropout: float = 0.0):
        super().__init__()
        features = 1
        for side in input_shape:
            features *= side
        layers: list[nn.Module] = [nn.Flatten()]
        for width in hidden:
            layers += [nn.Linear(features, width), nn.ReLU()]
            if dropout:
                layers.append(nn.Dropout(dropout))
            features = width
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(features, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


class SmallCNN(nn.Module):
    """Conv3x3-ReLU stages (2x2 max-pool between stages while the image is big enough), global average pool, Linear head."""

    def __init__(self, input_shape: tuple[int, ...], num_classes: int, channels: list[int], dropout: float = 0.0):
        super().__init__()
        in_ch, height, width = _image_shape("small_cnn", input_shape)
        side = min(height, width)
        layers: list[nn.Module] = []
        for i, out_ch in enumerate(channels):
            layers += [nn.Conv2d(in_ch, out_ch, kernel_size=3, padding=1), nn.ReLU()]
            if i < len(channels) - 1 and side >= 2:
                layers.append(nn.MaxPool2d(2))
                side //= 2
            in_ch = out_ch
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        if dropout:
            layers.append(nn.Dropout(dropout))
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(in_ch, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class TransformerClassifier(nn.Module):
    """A small encoder classifier: inputs -> tokens [B, T, F] -> Linear embed -> encoder -> mean over tokens -> `head`.

    Images [C, H, W] become non-overlapping patch tokens; [T, F] inputs are tokens already;
    a flat [F] input becomes F one-feature tokens. Positions are a learned nn.Embedding.
    """

    def __init__(self, input_shape: tuple[int, ...], num_classes: int, d_model: int, n_heads: int, n_layers: int,
                 patch: int, dropout: float = 0.0):
        super().__init__()
        self.patch = 0
        if len(input_shape) == 3:
            channels, height, width = input_shape
            self.patch = max(1, min(patch, height, width))
            tokens, features = (height // self.patch) * (width // self.patch), channels * self.patch**2
        elif len(input_shape) == 2:
            tokens, features = input_shape
        elif len(input_shape) == 1:
            tokens, features = input_shape[0], 1
        else:
            raise ModelError(f"model=transformer takes [C, H, W], [T, F] or [F] inputs, not {tuple(input_shape)}")
        self.input_rank = len(input_shape)
        self.embed = nn.Linear(features, d_model)
        self.positions = nn.Embedding(tokens, d_model)
        layer = nn.TransformerEncoderLayer(d_model, n_heads, dim_feedforward=2 * d_model, dropout=dropout, batch_first=True)
        # no padding masks here, so nested tensors would never be used (and torch warns about them)
        self.encoder = nn.TransformerEncoder(layer, n_layers, enable_nested_tensor=False)
        self.head = nn.Linear(d_model, num_classes)

    def tokens(self, x: torch.Tensor) -> torch.Tensor:
        if self.input_rank == 3:
            patches = nn.functional.unfold(x, kernel_size=self.patch, stride=self.patch)  # [B, C*p*p, T]
            return patches.transpose(1, 2)
        if self.input_rank == 1:
            return x.unsqueeze(-1)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.embed(self.tokens(x))
        index = torch.arange(tokens.shape[1], device=tokens.device)
        encoded = self.encoder(tokens + self.positions(index))
        return self.head(encoded.mean(dim=1))


def build_zoo(spec, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """mlp, small_cnn or transformer from a ModelConfig node, width and depth applied."""
    w = float(spec.width_mult)
    if spec.name == "mlp":
        hidden = [scaled(h, w) for h in _kept(spec.hidden, spec.depth)]
        return MLP(input_shape, num_classes, hidden, spec.dropout)
    if spec.name == "small_cnn":
        channels = [scaled(c, w) for c in _kept(spec.channels, spec.depth)]
        return SmallCNN(input_shape, num_classes, channels, spec.dropout)
    heads = int(spec.n_heads)
    # d_model must stay a multiple of the head count
    d_model = scaled(int(spec.d_model) / heads, w) * heads
    layers = int(spec.n_layers) if spec.depth is None else max(1, min(int(spec.n_layers), int(spec.depth)))
    return TransformerClassifier(input_shape, num_classes, d_model, heads, layers, int(spec.patch), spec.dropout)
