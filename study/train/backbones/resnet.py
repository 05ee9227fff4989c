"""ResNets: torchvision's blocks and layout (`resnet18`, `resnet34`, `resnet50`; width 64 gives torchvision's exact
architecture and parameter names) and small-image variants (`*_small`: 3x3 stride-1 stem, no max-pool,
for 28-64 px data). The classifier is left out: forward returns the pooled features."""
from __future__ import annotations

from torch import nn

from study.train.backbones import BACKBONES


class ResNetEncoder(nn.Module):
    """ResNet trunk + global average pool. `width` is the stem's channels (64 in torchvision); stage i has
    width * 2**i planes. Output: (B, feature_dim) with feature_dim = 8 * width * block.expansion."""

    def __init__(self, block: type, layers: list[int], width: int = 64, small: bool = False):
        super().__init__()
        self.inplanes = width
        if small:
            self.conv1 = nn.Conv2d(3, width, kernel_size=3, stride=1, padding=1, bias=False)
        else:
            self.conv1 = nn.Conv2d(3, width, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.Identity() if small else nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, width, layers[0])
        self.layer2 = self._make_layer(block, width * 2, layers[1], stride=2)
        self.layer3 = self._make_layer(block, width * 4, layers[2], stride=2)
        self.layer4 = self._make_layer(block, width * 8, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.feature_dim = width * 8 * block.expansion
        for m in self.modules():  # torchvision's initialisation
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def _make_layer(self, block: type, planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * block.expansion, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm2d(planes * block.expansion),
            )
        # base_width 64: Bottleneck's inner width is then `planes` (planes x base_width / 64), for any stem width
        kw = {} if block.expansion == 1 else {"base_width": 64}  # BasicBlock takes no base_width
        layers = [block(self.inplanes, planes, stride, downsample, **kw)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes, **kw) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.avgpool(x).flatten(1)


def _blocks() -> tuple[type, type]:
    """torchvision's (BasicBlock, Bottleneck), imported when an encoder is built: torchvision takes a second to
    import, and `study plan` checks backbone names without building one."""
    from torchvision.models.resnet import BasicBlock, Bottleneck

    return BasicBlock, Bottleneck


@BACKBONES.register("resnet18")
def resnet18(width: int = 64) -> ResNetEncoder:
    return ResNetEncoder(_blocks()[0], [2, 2, 2, 2], width)


@BACKBONES.register("resnet34")
def resnet34(width: int = 64) -> ResNetEncoder:
    return ResNetEncoder(_blocks()[0], [3, 4, 6, 3], width)


@BACKBONES.register("resnet50")
def resnet50(width: int = 64) -> ResNetEncoder:
    return ResNetEncoder(_blocks()[1], [3, 4, 6, 3], width)


@BACKBONES.register("resnet18_small")
def resnet18_small(width: int = 64) -> ResNetEncoder:
    return ResNetEncoder(_blocks()[0], [2, 2, 2, 2], width, small=True)


@BACKBONES.register("resnet34_small")
def resnet34_small(width: int = 64) -> ResNetEncoder:
    return ResNetEncoder(_blocks()[0], [3, 4, 6, 3], width, small=True)


@BACKBONES.register("resnet50_small")
def resnet50_small(width: int = 64) -> ResNetEncoder:
    return ResNetEncoder(_blocks()[1], [3, 4, 6, 3], width, small=True)
