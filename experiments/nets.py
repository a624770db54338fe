"""The networks of the reduction study (issue 13), beside the PSPNet of v1–v5 (:mod:`pspnet`).

``arch: context`` — the ResNet baseline and teacher: a torchvision ResNet (random init) through its
third stage (output stride 16), pyramid pooling (bins 1, 2, 3, 6) on that stage, and the context
fused back with skips from the second stage (stride 8) and the first (stride 4), a 1×1 head and a
4× bilinear upsampling. ResNet-18 is the baseline, ResNet-50/101 the teacher.

``arch: factorised`` — the same decoder on a factorised encoder: every 3×3 convolution of the
ResNet basic blocks becomes depthwise-separable (a 3×3 per-channel conv, then a 1×1 conv), the stem
can be slim (a 3×3 stride-2 conv to a few channels and a separable stride-2 conv instead of the
7×7 conv and max-pool), the stage widths and block counts are parameters (narrower channels), and
the decoder's 3×3 convolutions can be separable too.

``low_rank`` (either arch) — the k×k convolutions named in it replaced by a k×k conv to ``rank``
channels followed by a 1×1 conv back (:func:`apply_low_rank`); initialised from the SVD of a
trained network's weights (:func:`svd_init`).

Every block is conv → batch-norm → ReLU, so that the exporter folds the batch-norms and the
int8 tooling sees Conv(+Relu) chains.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from . import pspnet

BINS = (1, 2, 3, 6)


def conv_bn(cin: int, cout: int, k: int = 1, stride: int = 1, groups: int = 1, relu: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout)]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


def separable(cin: int, cout: int, stride: int = 1, relu: bool = True) -> nn.Sequential:
    """Depthwise 3×3 (+BN+ReLU), then pointwise 1×1 (+BN, ReLU unless relu=False)."""
    return nn.Sequential(conv_bn(cin, cin, 3, stride, groups=cin), *conv_bn(cin, cout, 1, relu=relu))


def conv3(cin: int, cout: int, sep: bool, stride: int = 1, relu: bool = True) -> nn.Sequential:
    return separable(cin, cout, stride, relu) if sep else conv_bn(cin, cout, 3, stride, relu=relu)


# ------------------------------------------------------------------------------------ encoders

class ResNetEncoder(nn.Module):
    """torchvision ResNet through layer3: features at strides 4, 8, 16."""

    def __init__(self, name: str) -> None:
        super().__init__()
        if name not in pspnet.ENCODERS:
            raise ValueError(f"unknown encoder {name!r}; one of {pspnet.ENCODERS}")
        net = getattr(torchvision.models, name)(weights=None)  # random init: nothing is downloaded
        self.stem = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool)
        self.layer1, self.layer2, self.layer3 = net.layer1, net.layer2, net.layer3
        wide = name in ("resnet50", "resnet101")
        self.channels = (256, 512, 1024) if wide else (64, 128, 256)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        f4 = self.layer1(self.stem(x))
        f8 = self.layer2(f4)
        return f4, f8, self.layer3(f8)


class SepBlock(nn.Module):
    """A ResNet basic block with both 3×3 convolutions depthwise-separable (or dense: sep=False)."""

    def __init__(self, cin: int, cout: int, stride: int, sep: bool = True) -> None:
        super().__init__()
        self.a = conv3(cin, cout, sep, stride)
        self.b = conv3(cout, cout, sep, relu=False)
        self.short = None if stride == 1 and cin == cout else conv_bn(cin, cout, 1, stride, relu=False)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x if self.short is None else self.short(x)
        return self.relu(self.b(self.a(x)) + s)


class FactorisedEncoder(nn.Module):
    def __init__(self, widths=(64, 128, 256), blocks=(2, 2, 2), slim_stem: bool = True, stem_width: int = 16,
                 sep: bool = True) -> None:
        super().__init__()
        if slim_stem:  # 3×3 s2 to a few channels, separable s2 to the first stage's width
            self.stem = nn.Sequential(conv_bn(3, stem_width, 3, 2), conv3(stem_width, widths[0], sep, 2))
        else:  # ResNet's: 7×7 s2 to 64, max-pool
            self.stem = nn.Sequential(nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(inplace=True),
                                      nn.MaxPool2d(3, 2, 1), *([conv_bn(64, widths[0], 1)] if widths[0] != 64 else []))
        stages = []
        cin = widths[0]
        for i, (w, n) in enumerate(zip(widths, blocks)):
            stride = 1 if i == 0 else 2
            stages.append(nn.Sequential(*[SepBlock(cin if j == 0 else w, w, stride if j == 0 else 1, sep) for j in range(n)]))
            cin = w
        self.layer1, self.layer2, self.layer3 = stages
        self.channels = tuple(widths)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        f4 = self.layer1(self.stem(x))
        f8 = self.layer2(f4)
        return f4, f8, self.layer3(f8)


# ------------------------------------------------------------------------------------ decoder

class Pyramid(nn.Module):
    """Pyramid pooling: average pools to b×b cells, a 1×1 conv (+ReLU) each, upsampled, concatenated."""

    def __init__(self, cin: int, branch: int, bins=BINS) -> None:
        super().__init__()
        self.bins = tuple(bins)
        # no batch-norm on pooled maps (a 1×1 map has one value per channel and sample)
        self.branches = nn.ModuleList([nn.Sequential(nn.Conv2d(cin, branch, 1), nn.ReLU(inplace=True)) for _ in self.bins])
        self.out_channels = cin + branch * len(self.bins)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        outs = [x]
        for b, conv in zip(self.bins, self.branches):
            if h % b or w % b:
                raise ValueError(f"feature map {h}x{w} not divisible by pyramid bin {b} (input must be a multiple of {16 * 6})")
            y = conv(F.avg_pool2d(x, kernel_size=(h // b, w // b)))
            outs.append(F.interpolate(y, size=(h, w), mode="bilinear", align_corners=False))
        return torch.cat(outs, 1)


class ContextDecoder(nn.Module):
    """PPM on the stride-16 features, then fused with a skip at stride 8 and (skip4 > 0) at stride 4.

    ``add``: a skip is projected to the decoder's width and added instead of concatenated (no
    Concat of wide high-resolution maps: cheaper at 1152×768).
    """

    def __init__(self, channels, branch: int, mid: int, mid4: int, skip8: int, skip4: int, classes: int,
                 sep: bool = False, dropout: float = 0.1, add: bool = False) -> None:
        super().__init__()
        c4, c8, c16 = channels
        self.add = add
        self.ppm = Pyramid(c16, branch)
        self.fuse16 = conv_bn(self.ppm.out_channels, mid, 1)
        self.skip8 = conv_bn(c8, mid if add else skip8, 1, relu=not add)
        self.fuse8 = conv3(mid if add else mid + skip8, mid, sep)
        out = mid
        self.skip4 = self.fuse4 = None
        if skip4 > 0:
            self.skip4 = conv_bn(c4, mid if add else skip4, 1, relu=not add)
            self.fuse4 = conv3(mid if add else mid + skip4, mid4, sep)
            out = mid4
        self.output_stride = 4 if skip4 > 0 else 8
        self.dropout = nn.Dropout2d(dropout)
        self.head = nn.Conv2d(out, classes, 1)

    def _fuse(self, y: torch.Tensor, skip: torch.Tensor, proj: nn.Module, conv: nn.Module) -> torch.Tensor:
        y = F.interpolate(y, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return conv(y + proj(skip) if self.add else torch.cat([y, proj(skip)], 1))

    def forward(self, f4, f8, f16, features: list | None = None) -> torch.Tensor:
        y = self.fuse16(self.ppm(f16))
        if features is not None:
            features.append(y)
        y = self._fuse(y, f8, self.skip8, self.fuse8)
        if self.fuse4 is not None:
            y = self._fuse(y, f4, self.skip4, self.fuse4)
        if features is not None:
            features.append(y)
        return self.head(self.dropout(y))


class ContextNet(nn.Module):
    """Encoder (strides 4/8/16) + context decoder + 4× bilinear upsampling of the logits."""

    def __init__(self, encoder: nn.Module, decoder: ContextDecoder) -> None:
        super().__init__()
        self.encoder, self.decoder = encoder, decoder

    def forward(self, x: torch.Tensor, features: list | None = None) -> torch.Tensor:
        return upsample(self.lowres(x, features), x.shape[-2:])

    def lowres(self, x: torch.Tensor, features: list | None = None) -> torch.Tensor:
        """The logits at the decoder's stride, before the final upsampling."""
        f4, f8, f16 = self.encoder(x)
        return self.decoder(f4, f8, f16, features)


def upsample(logits: torch.Tensor, size) -> torch.Tensor:
    """The network's last step: bilinear upsampling of the logits to the input size."""
    return F.interpolate(logits, size=size, mode="bilinear", align_corners=False)


# ------------------------------------------------------------------------------------ low rank

class LowRankConv(nn.Module):
    """k×k conv Cin→rank (the original's stride and padding), then 1×1 rank→Cout (the bias)."""

    def __init__(self, conv: nn.Conv2d, rank: int) -> None:
        super().__init__()
        self.reduce = nn.Conv2d(conv.in_channels, rank, conv.kernel_size, conv.stride, conv.padding, conv.dilation, bias=False)
        self.expand = nn.Conv2d(rank, conv.out_channels, 1, bias=conv.bias is not None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.expand(self.reduce(x))


def low_rank_targets(model: nn.Module, min_kernel: int = 3) -> dict[str, nn.Conv2d]:
    """The dense k×k (k ≥ min_kernel) convolutions a low-rank factorisation applies to."""
    return {n: m for n, m in model.named_modules()
            if isinstance(m, nn.Conv2d) and m.groups == 1 and m.kernel_size[0] >= min_kernel and m.in_channels > 3}


def ranks_for(model: nn.Module, ratio: float) -> dict[str, int]:
    """A rank per target conv: ratio × the rank at which the factorisation costs as much as the conv."""
    out = {}
    for name, conv in low_rank_targets(model).items():
        k = conv.kernel_size[0] * conv.kernel_size[1]
        breakeven = conv.out_channels * conv.in_channels * k / (conv.in_channels * k + conv.out_channels)
        out[name] = max(4, int(round(ratio * breakeven / 4)) * 4)
    return out


def _set(model: nn.Module, name: str, module: nn.Module) -> None:
    parent, _, leaf = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, leaf, module)


def apply_low_rank(model: nn.Module, ranks: dict[str, int]) -> nn.Module:
    for name, conv in low_rank_targets(model).items():
        if name in ranks:
            _set(model, name, LowRankConv(conv, int(ranks[name])))
    return model


@torch.no_grad()
def svd_init(model: nn.Module, source: nn.Module) -> dict[str, float]:
    """Copy ``source``'s weights into ``model`` (its low-rank version): every LowRankConv gets the
    truncated SVD of the source conv's weight W (Cout × Cin·k·k) = U S Vᵀ: reduce = √S Vᵀ,
    expand = U √S. Returns the kept share of the squared singular values per layer."""
    src = dict(source.named_modules())
    energy = {}
    for name, m in model.named_modules():
        if not isinstance(m, LowRankConv):
            continue
        conv = src[name]
        w = conv.weight.reshape(conv.out_channels, -1)
        u, s, vh = torch.linalg.svd(w, full_matrices=False)
        r = m.reduce.out_channels
        root = s[:r].sqrt()
        m.reduce.weight.copy_((root[:, None] * vh[:r]).reshape(r, *conv.weight.shape[1:]))
        m.expand.weight.copy_((u[:, :r] * root[None, :]).reshape(conv.out_channels, r, 1, 1))
        if conv.bias is not None:
            m.expand.bias.copy_(conv.bias)
        energy[name] = float((s[:r] ** 2).sum() / (s ** 2).sum())
    own = {k for k, _ in model.named_parameters()} | {k for k, _ in model.named_buffers()}
    rest = {k: v for k, v in source.state_dict().items() if k in own}
    model.load_state_dict(rest, strict=False)
    return energy


# ------------------------------------------------------------------------------------ build

def build(cfg: dict) -> nn.Module:
    """A network from the ``model`` section of a config (``arch`` absent: the PSPNet of v1–v5)."""
    arch = cfg.get("arch", "pspnet")
    classes = int(cfg.get("classes", 2))
    if arch == "pspnet":
        net: nn.Module = pspnet.build(cfg)
    elif arch in ("context", "factorised"):
        if arch == "context":
            enc: nn.Module = ResNetEncoder(cfg.get("encoder", "resnet18"))
        else:
            enc = FactorisedEncoder(tuple(cfg.get("widths", (64, 128, 256))), tuple(cfg.get("blocks", (2, 2, 2))),
                                    bool(cfg.get("slim_stem", True)), int(cfg.get("stem_width", 16)),
                                    bool(cfg.get("separable", True)))
        d = cfg.get("decoder", {})
        dec = ContextDecoder(enc.channels, int(d.get("branch", 64)), int(d.get("mid", 128)), int(d.get("mid4", 96)),
                             int(d.get("skip8", 48)), int(d.get("skip4", 32)), classes, bool(d.get("separable", False)),
                             float(cfg.get("dropout", 0.1)), bool(d.get("add", False)))
        net = ContextNet(enc, dec)
    else:
        raise ValueError(f"unknown arch {arch!r}")
    lr = cfg.get("low_rank")
    if lr:
        # a number: that share of each conv's break-even rank (ranks_for); a mapping: conv → rank
        apply_low_rank(net, ranks_for(net, float(lr)) if isinstance(lr, (int, float)) else lr)
    return net


def count_gflops(model: nn.Module, height: int, width: int) -> float:
    return pspnet.count_gflops(model, height, width)


def count_params(model: nn.Module) -> int:
    return pspnet.count_params(model)


def describe(cfg: dict) -> str:
    arch = cfg.get("arch", "pspnet")
    if arch == "pspnet":
        return f"PSPNet {cfg.get('encoder', 'resnet18')}, {cfg.get('psp_out_channels')} ch"
    if arch == "context":
        s = f"context net {cfg.get('encoder', 'resnet18')} (OS16, PPM, skips to stride 4)"
    else:
        w = "/".join(str(v) for v in cfg.get("widths", (64, 128, 256)))
        kind = "DW-separable" if cfg.get("separable", True) else "dense"
        s = f"factorised ({kind}, widths {w}{', slim stem' if cfg.get('slim_stem', True) else ''})"
    if cfg.get("low_rank"):
        lr = cfg["low_rank"]
        s += f", low-rank ({lr} × break-even rank)" if isinstance(lr, (int, float)) else f", low-rank ({len(lr)} convs)"
    return s
