"""The SPP-CSP block of YOLOv4-CSP's neck (``yolov4-csp.cfg`` layers 99-113)."""
from typing import Sequence

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule

from mmdet.utils import ConfigType, OptMultiConfig

from .csp_layers import YOLOV4_CSP_BN


class SPPCSPBlock(BaseModule):
    """Spatial pyramid pooling inside a cross-stage-partial block::

        short = ConvModule 1x1 (in -> c)(x)                                 cfg 99
        y     = ConvModule 1x1 (in -> c), 3x3 (c -> c), 1x1 (c -> c)(x)     cfg 101-103
        y     = cat(maxpool13(y), maxpool9(y), maxpool5(y), y)              cfg 104-109 (stride 1, same size)
        y     = ConvModule 1x1 (4c -> c), 3x3 (c -> c)(y)                   cfg 110-111
        out   = ConvModule 1x1 (2c -> c)(cat(y, short))                     cfg 112-113

    mmdet's ``SPPBottleneck`` concatenates ``[x, pools...]`` in the opposite
    order (the next conv's input channels would not match the cfg's weights)
    and has no CSP split, hence this block.

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels ``c`` (also the width inside).
        pool_sizes (Sequence[int]): Max-pool kernels, smallest first. Defaults to (5, 9, 13).
        norm_cfg (dict): Norm layers. Defaults to ``dict(type='BN', momentum=0.03, eps=1e-4)``.
        act_cfg (dict): Activation. Defaults to ``dict(type='Mish')``.
        init_cfg (dict or list[dict], optional): Initialization config. Defaults to None.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 pool_sizes: Sequence[int] = (5, 9, 13),
                 norm_cfg: ConfigType = YOLOV4_CSP_BN,
                 act_cfg: ConfigType = dict(type='Mish'),
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(init_cfg=init_cfg)
        common = dict(norm_cfg=norm_cfg, act_cfg=act_cfg)
        c = out_channels
        self.short_conv = ConvModule(in_channels, c, 1, **common)
        self.pre_convs = nn.Sequential(
            ConvModule(in_channels, c, 1, **common), ConvModule(c, c, 3, padding=1, **common),
            ConvModule(c, c, 1, **common))
        # Largest kernel first: the cfg's concatenation order.
        self.pools = nn.ModuleList(
            nn.MaxPool2d(k, stride=1, padding=k // 2) for k in sorted(pool_sizes, reverse=True))
        self.post_convs = nn.Sequential(
            ConvModule((len(pool_sizes) + 1) * c, c, 1, **common), ConvModule(c, c, 3, padding=1, **common))
        self.final_conv = ConvModule(2 * c, c, 1, **common)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        short = self.short_conv(x)
        y = self.pre_convs(x)
        y = self.post_convs(torch.cat([pool(y) for pool in self.pools] + [y], dim=1))
        return self.final_conv(torch.cat((y, short), dim=1))
