"""torchvision models (random init) with width and depth applied, for any input channel count.

width_mult: resnets scale every stage's channels (64/128/256/512 -> times width_mult) on
torchvision's own ResNet class and blocks; mobilenet_v2 uses torchvision's native
width_mult; efficientnet_b0 builds b0's stage table with MBConvConfig's width_mult.
depth: caps the blocks per stage (resnet50 [3,4,6,3] with depth 2 -> [2,2,2,2]; the same
for the inverted-residual stages of mobilenet_v2 and efficientnet_b0).
"""

from __future__ import annotations

from functools import partial

from torch import nn
from torchvision.models import efficientnet as tv_efficientnet
from torchvision.models import mobilenetv2 as tv_mobilenet
from torchvision.models import resnet as tv_resnet

from pai_sweep.models.zoo import scaled

RESNET_LAYOUTS = {
    "resnet18": (tv_resnet.BasicBlock, [2, 2, 2, 2]),
    "resnet34": (tv_resnet.BasicBlock, [3, 4, 6, 3]),
    "resnet50": (tv_resnet.Bottleneck, [3, 4, 6, 3]),
}
MOBILENET_V2_STAGES = [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 3, 2], [6, 64, 4, 2], [6, 96, 3, 1], [6, 160, 3, 2], [6, 320, 1, 1]]
# efficientnet_b0's stages (torchvision's table): expand, kernel, stride, in, out, blocks
EFFICIENTNET_B0_STAGES = [(1, 3, 1, 32, 16, 1), (6, 3, 2, 16, 24, 2), (6, 5, 2, 24, 40, 2), (6, 3, 2, 40, 80, 3),
                          (6, 5, 1, 80, 112, 3), (6, 5, 2, 112, 192, 4), (6, 3, 1, 192, 320, 1)]


class ScaledResNet(tv_resnet.ResNet):
    """torchvision's ResNet with every stage's width times `width_mult` and `in_channels` input channels.

    At width 1, 3 channels and full depth its state_dict keys and shapes are torchvision's.
    """

    def __init__(self, block, layers: list[int], num_classes: int, width_mult: float = 1.0, in_channels: int = 3):
        nn.Module.__init__(self)  # ResNet.__init__ hard-codes 64..512 channels: build the same layout here
        self._norm_layer = nn.BatchNorm2d
        self.dilation, self.groups, self.base_width = 1, 1, 64
        planes = [scaled(p, width_mult) for p in (64, 128, 256, 512)]
        self.inplanes = planes[0]
        self.conv1 = nn.Conv2d(in_channels, self.inplanes, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(self.inplanes)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, planes[0], layers[0])
        self.layer2 = self._make_layer(block, planes[1], layers[1], stride=2)
        self.layer3 = self._make_layer(block, planes[2], layers[2], stride=2)
        self.layer4 = self._make_layer(block, planes[3], layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(planes[3] * block.expansion, num_classes)
        for m in self.modules():  # torchvision's initialisation
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)


def _capped(blocks: int, depth: int | None) -> int:
    return blocks if depth is None else max(1, min(blocks, int(depth)))


def _first_conv_channels(conv_block: nn.Sequential, in_channels: int) -> None:
    """Give the stem convolution `in_channels` inputs (torchvision's stems take 3)."""
    old = conv_block[0]
    if old.in_channels == in_channels:
        return
    conv_block[0] = nn.Conv2d(in_channels, old.out_channels, old.kernel_size, old.stride, old.padding, bias=old.bias is not None)
    nn.init.kaiming_normal_(conv_block[0].weight, mode="fan_out")


# The ModelConfig fields build_vision reads per model (build_model adds `weights`; see consumers.py).
READS = {
    **{name: ("width_mult", "depth") for name in RESNET_LAYOUTS},
    "mobilenet_v2": ("width_mult", "depth", "dropout"),
    "efficientnet_b0": ("width_mult", "depth", "dropout"),
}


def build_vision(spec, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    in_channels = int(input_shape[0])
    w, depth = float(spec.width_mult), spec.depth
    if spec.name in RESNET_LAYOUTS:
        block, layers = RESNET_LAYOUTS[spec.name]
        return ScaledResNet(block, [_capped(n, depth) for n in layers], num_classes, w, in_channels)
    if spec.name == "mobilenet_v2":
        stages = [[t, c, _capped(n, depth), s] for t, c, n, s in MOBILENET_V2_STAGES]
        model = tv_mobilenet.MobileNetV2(num_classes=num_classes, width_mult=w, inverted_residual_setting=stages, dropout=spec.dropout)
        _first_conv_channels(model.features[0], in_channels)
        return model
    config = partial(tv_efficientnet.MBConvConfig, width_mult=w, depth_mult=1.0)
    stages = [config(e, k, s, i, o, _capped(n, depth)) for e, k, s, i, o, n in EFFICIENTNET_B0_STAGES]
    model = tv_efficientnet.EfficientNet(stages, dropout=spec.dropout, num_classes=num_classes)
    _first_conv_channels(model.features[0], in_channels)
    return model
