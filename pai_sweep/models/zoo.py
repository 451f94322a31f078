"""The project's own small models: mlp, small_cnn, conv1d, transformer. Sized for digits / MNIST-1D, scalable by width/depth."""

from __future__ import annotations

import torch
from torch import nn

from pai_sweep.errors import ModelError

# Conv channels per stage when model.channels is None (conf/model/*.yaml set the same)
DEFAULT_CHANNELS = {"small_cnn": [8, 16], "conv1d": [8, 16, 32]}


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


class ConvStages(nn.Module):
    """Conv stages (the stage's layers, then ReLU; a 2x max-pool between stages while the input is >= 2 long),
    global average pool, Linear `head`. SmallCNN and Conv1dNet differ only in the layers they pass."""

    def __init__(self, stage, pool: type, global_pool: type, in_ch: int, size: int, channels: list[int], num_classes: int,
                 dropout: float):
        super().__init__()
        layers: list[nn.Module] = []
        for i, out_ch in enumerate(channels):
            layers += [*stage(in_ch, out_ch), nn.ReLU()]
            if i < len(channels) - 1 and size >= 2:
                layers.append(pool(2))
                size //= 2
            in_ch = out_ch
        layers += [global_pool(1), nn.Flatten()]
        if dropout:
            layers.append(nn.Dropout(dropout))
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(in_ch, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class SmallCNN(ConvStages):
    """Conv3x3-ReLU stages (2x2 max-pool between stages while the image is big enough), global average pool, Linear head."""

    def __init__(self, input_shape: tuple[int, ...], num_classes: int, channels: list[int], dropout: float = 0.0):
        in_ch, height, width = _image_shape("small_cnn", input_shape)
        super().__init__(lambda i, o: [nn.Conv2d(i, o, kernel_size=3, padding=1)], nn.MaxPool2d, nn.AdaptiveAvgPool2d,
                         in_ch, min(height, width), channels, num_classes, dropout)


def _sequence_shape(name: str, input_shape: tuple[int, ...]) -> tuple[int, int]:
    if len(input_shape) != 2:
        raise ModelError(f"model={name} needs sequence data [C, L] but the data gives {tuple(input_shape)}; use data=mnist1d, or model=small_cnn for images")
    return tuple(input_shape)  # type: ignore[return-value]


class Conv1dNet(ConvStages):
    """Conv1d(same padding)-BatchNorm1d-ReLU stages over time (2x max-pool between stages), global average pool
    over time, Linear head."""

    def __init__(self, input_shape: tuple[int, ...], num_classes: int, channels: list[int], kernel_size: int = 3,
                 batch_norm: bool = True, dropout: float = 0.0):
        in_ch, length = _sequence_shape("conv1d", input_shape)

        def stage(i: int, o: int) -> list[nn.Module]:
            conv = nn.Conv1d(i, o, kernel_size=kernel_size, padding=kernel_size // 2)
            return [conv, nn.BatchNorm1d(o)] if batch_norm else [conv]

        super().__init__(stage, nn.MaxPool1d, nn.AdaptiveAvgPool1d, in_ch, length, channels, num_classes, dropout)


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


# The ModelConfig fields build_zoo reads per model (build_model adds `weights`): a searched or
# overridden field the chosen model does not read is refused (pai_sweep/consumers.py).
READS = {
    "mlp": ("hidden", "width_mult", "depth", "dropout"),
    "small_cnn": ("channels", "width_mult", "depth", "dropout"),
    "conv1d": ("channels", "kernel_size", "batch_norm", "width_mult", "depth", "dropout"),
    "transformer": ("d_model", "n_heads", "n_layers", "patch", "width_mult", "depth", "dropout"),
}


def build_zoo(spec, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """mlp, small_cnn, conv1d or transformer from a ModelConfig node, width and depth applied."""
    w = float(spec.width_mult)
    if spec.name == "mlp":
        hidden = [scaled(h, w) for h in _kept(spec.hidden, spec.depth)]
        return MLP(input_shape, num_classes, hidden, spec.dropout)
    if spec.name in DEFAULT_CHANNELS:
        stages = DEFAULT_CHANNELS[spec.name] if spec.channels is None else list(spec.channels)
        if not stages:
            raise ModelError(f"model.channels=[] leaves {spec.name} without convolutions: give at least one, e.g. {DEFAULT_CHANNELS[spec.name]}")
        channels = [scaled(c, w) for c in _kept(stages, spec.depth)]
    if spec.name == "small_cnn":
        return SmallCNN(input_shape, num_classes, channels, spec.dropout)
    if spec.name == "conv1d":
        if int(spec.kernel_size) < 1:
            raise ModelError(f"model.kernel_size={spec.kernel_size} must be >= 1 (e.g. 3)")
        return Conv1dNet(input_shape, num_classes, channels, int(spec.kernel_size), bool(spec.batch_norm), spec.dropout)
    heads = int(spec.n_heads)
    # d_model must stay a multiple of the head count
    d_model = scaled(int(spec.d_model) / heads, w) * heads
    layers = int(spec.n_layers) if spec.depth is None else max(1, min(int(spec.n_layers), int(spec.depth)))
    return TransformerClassifier(input_shape, num_classes, d_model, heads, layers, int(spec.patch), spec.dropout)
