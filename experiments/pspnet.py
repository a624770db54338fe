"""PSPNet as in the study (segmentation_models_pytorch layout, written here, random init).

Encoder: a torchvision ResNet cut after ``encoder_depth`` stages — depth 3 keeps
conv1+bn+relu+maxpool, layer1 and layer2 (output stride 8; 128 channels for ResNet-18/34,
512 for ResNet-50/101). Decoder: pyramid pooling with bins 1, 2, 3, 6 (each a 1×1 conv to
in/4 channels, optional batch-norm, bilinear upsampling), concatenated with the input, a 1×1
fusion conv to ``psp_out_channels``, dropout, a 3×3 head to the classes and bilinear
upsampling by the output stride.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
import torchvision
from torch import nn

ENCODERS = ("resnet18", "resnet34", "resnet50", "resnet101")
BINS = (1, 2, 3, 6)


class ResNetEncoder(nn.Module):
    def __init__(self, name: str, depth: int) -> None:
        super().__init__()
        if name not in ENCODERS:
            raise ValueError(f"unknown encoder {name!r}; one of {ENCODERS}")
        if not 1 <= depth <= 5:
            raise ValueError("encoder_depth must be 1..5")
        net = getattr(torchvision.models, name)(weights=None)  # random init: nothing is downloaded
        # depth counts like smp: 1 = stem at stride 2, 2 = + max-pool and layer1 (stride 4),
        # 3 = + layer2 (stride 8), 4 = + layer3, 5 = + layer4
        stem = nn.Sequential(net.conv1, net.bn1, net.relu)
        stages = [stem, nn.Sequential(net.maxpool, net.layer1), net.layer2, net.layer3, net.layer4]
        self.stages = nn.Sequential(*stages[:depth])
        widths = [64, 64, 128, 256, 512]
        if name in ("resnet50", "resnet101"):
            widths = [64, 256, 512, 1024, 2048]
        self.out_channels = widths[depth - 1]
        self.output_stride = 2 ** depth

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.stages(x)


class PSPBlock(nn.Module):
    def __init__(self, cin: int, cout: int, bins: int, batchnorm: bool) -> None:
        super().__init__()
        self.bins = bins
        layers: list[nn.Module] = [nn.Conv2d(cin, cout, 1, bias=not batchnorm)]
        # batch-norm on a 1×1 pooled map has one value per channel and sample: smp disables it there
        if batchnorm and bins > 1:
            layers.append(nn.BatchNorm2d(cout))
        elif batchnorm:
            layers[0] = nn.Conv2d(cin, cout, 1, bias=True)
        layers.append(nn.ReLU(inplace=True))
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        if h % self.bins or w % self.bins:
            # a fixed-size average pool exports cleanly to ONNX; adaptive pooling with a
            # non-dividing size does not, so the input size must be chosen accordingly
            raise ValueError(f"feature map {h}x{w} not divisible by pyramid bin {self.bins}")
        y = F.avg_pool2d(x, kernel_size=(h // self.bins, w // self.bins))
        y = self.conv(y)
        return F.interpolate(y, size=(h, w), mode="bilinear", align_corners=True)


class PSPNet(nn.Module):
    def __init__(self, encoder: str = "resnet18", encoder_depth: int = 3, psp_out_channels: int = 512,
                 psp_use_batchnorm: bool = True, dropout: float = 0.2, classes: int = 2) -> None:
        super().__init__()
        self.encoder = ResNetEncoder(encoder, encoder_depth)
        c = self.encoder.out_channels
        self.psp = nn.ModuleList([PSPBlock(c, c // len(BINS), b, psp_use_batchnorm) for b in BINS])
        fusion: list[nn.Module] = [nn.Conv2d(c * 2, psp_out_channels, 1, bias=not psp_use_batchnorm)]
        if psp_use_batchnorm:
            fusion.append(nn.BatchNorm2d(psp_out_channels))
        fusion.append(nn.ReLU(inplace=True))
        self.fusion = nn.Sequential(*fusion)
        self.dropout = nn.Dropout2d(dropout)
        self.head = nn.Conv2d(psp_out_channels, classes, 3, padding=1)
        self.upsampling = self.encoder.output_stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.encoder(x)
        y = torch.cat([f, *[b(f) for b in self.psp]], dim=1)
        y = self.dropout(self.fusion(y))
        y = self.head(y)
        return F.interpolate(y, scale_factor=self.upsampling, mode="bilinear", align_corners=True)


def build(cfg: dict) -> PSPNet:
    """A PSPNet from the ``model`` section of an experiment config."""
    return PSPNet(encoder=cfg.get("encoder", "resnet18"), encoder_depth=int(cfg.get("encoder_depth", 3)),
                  psp_out_channels=int(cfg.get("psp_out_channels", 512)),
                  psp_use_batchnorm=bool(cfg.get("psp_use_batchnorm", True)),
                  dropout=float(cfg.get("dropout", 0.2)), classes=int(cfg.get("classes", 2)))


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_gflops(model: nn.Module, height: int, width: int) -> float:
    """2 × multiply-accumulates of the convolutions and linear layers for one image (GFLOPs)."""
    macs = 0

    def hook(mod: nn.Module, _inp, out) -> None:
        nonlocal macs
        if isinstance(mod, nn.Conv2d):
            k = mod.kernel_size[0] * mod.kernel_size[1] * (mod.in_channels // mod.groups)
            macs += out.numel() * k
        elif isinstance(mod, nn.Linear):
            macs += out.numel() * mod.in_features

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    was_training = model.training
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, 3, height, width))
    model.train(was_training)
    for h in handles:
        h.remove()
    return 2 * macs / 1e9
