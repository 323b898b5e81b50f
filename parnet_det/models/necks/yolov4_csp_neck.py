"""The neck of YOLOv4-CSP: SPP-CSP on stride 32, then the CSP-ized FPN and PAN of ``yolov4-csp.cfg``."""
from collections import OrderedDict
from typing import Sequence, Tuple

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule

from mmdet.registry import MODELS
from mmdet.utils import ConfigType, OptMultiConfig

from ..layers.csp_layers import YOLOV4_CSP_BN, DarknetCSPBlock
from ..layers.spp_csp import SPPCSPBlock
from ..utils.widths import make_divisible


@MODELS.register_module()
class YOLOv4CSPNeck(BaseModule):
    """SPP-CSP and CSP-PAN of YOLOv4-CSP (``yolov4-csp.cfg`` layers 99-171; cfg numbers below).

    With inputs ``C3, C4, C5`` (strides 8/16/32) and widths ``w = (128, 256, 512) * widen_factor``::

        N5 = spp_csp(C5)                                                            99-113, w5
        N4 = top_down_blocks[0](cat(lateral_convs[0](C4), up(reduce_convs[0](N5))))  114-127, w4
        P3 = top_down_blocks[1](cat(lateral_convs[1](C3), up(reduce_convs[1](N4))))  128-141, w3
        P4 = bottom_up_blocks[0](cat(downsample_convs[0](P3), N4))                  146-156, w4
        P5 = bottom_up_blocks[1](cat(downsample_convs[1](P4), N5))                  161-171, w5

    ``up`` is nearest x2; every conv is a ConvModule (conv, BN, Mish); the
    downsample convs are 3x3 stride 2, the others 1x1. Each block is a 1x1
    ConvModule (``in_conv``, 2w -> w) and a :class:`DarknetCSPBlock` without
    main-branch 1x1 convs and without residuals (``csp``: split 1x1, two
    1x1 + 3x3 pairs, concat, 1x1). The concatenation orders are the cfg's:
    lateral first, upsampled second; downsampled first, lateral second.

    Returns ``(P3, P4, P5)`` with ``w`` = 128/256/512 channels (cfg layers
    141/156/171); the 256/512/1024-wide 3x3 convs after them belong to the
    head (:class:`~parnet_det.models.dense_heads.YOLOv4CSPHead`). Any input
    widths work: every input first meets 1x1 convs (117, 131, and 99/101 in
    the SPP-CSP), so a ParNet needs no extra reduction convs under this neck.

    Args:
        in_channels (Sequence[int]): Widths of C3, C4, C5. Defaults to
            (256, 512, 1024), CSPDarknet53s's.
        widen_factor (float): Width multiplier of the neck (rounded up to a
            multiple of 8). Defaults to 1.0.
        norm_cfg (dict): Norm layers. Defaults to ``dict(type='BN', momentum=0.03, eps=1e-4)``
            (Scaled-YOLOv4's PyTorch port).
        act_cfg (dict): Activation. Defaults to ``dict(type='Mish')``.
        init_cfg (dict or list[dict], optional): Initialization config.
            Defaults to Kaiming uniform (``a=sqrt(5)``) for Conv2d, PyTorch's default.
    """

    WIDTHS = (128, 256, 512)

    def __init__(self,
                 in_channels: Sequence[int] = (256, 512, 1024),
                 widen_factor: float = 1.0,
                 norm_cfg: ConfigType = YOLOV4_CSP_BN,
                 act_cfg: ConfigType = dict(type='Mish'),
                 init_cfg: OptMultiConfig = dict(
                     type='Kaiming', layer='Conv2d', a=5**0.5, distribution='uniform',
                     mode='fan_in', nonlinearity='leaky_relu')) -> None:
        super().__init__(init_cfg=init_cfg)
        if len(in_channels) != 3:
            raise ValueError(f'YOLOv4CSPNeck takes 3 levels (strides 8/16/32), got in_channels={list(in_channels)}')
        if widen_factor <= 0:
            raise ValueError(f'widen_factor must be positive, got {widen_factor}')
        self.in_channels = list(in_channels)
        w3, w4, w5 = (make_divisible(w * widen_factor) for w in self.WIDTHS)
        self.out_channels = [w3, w4, w5]
        common = dict(norm_cfg=norm_cfg, act_cfg=act_cfg)
        c3, c4, c5 = in_channels

        def csp_block(width: int) -> nn.Sequential:
            return nn.Sequential(OrderedDict(
                in_conv=ConvModule(2 * width, width, 1, **common),
                csp=DarknetCSPBlock(width, width, num_blocks=2, expansion=1.0, add_identity=False,
                                    main_branch_convs=False, **common)))

        self.spp_csp = SPPCSPBlock(c5, w5, **common)
        self.reduce_convs = nn.ModuleList([ConvModule(w5, w4, 1, **common), ConvModule(w4, w3, 1, **common)])
        self.lateral_convs = nn.ModuleList([ConvModule(c4, w4, 1, **common), ConvModule(c3, w3, 1, **common)])
        self.top_down_blocks = nn.ModuleList([csp_block(w4), csp_block(w3)])
        self.upsample = nn.Upsample(scale_factor=2, mode='nearest')
        self.downsample_convs = nn.ModuleList([
            ConvModule(w3, w4, 3, stride=2, padding=1, **common),
            ConvModule(w4, w5, 3, stride=2, padding=1, **common)])
        self.bottom_up_blocks = nn.ModuleList([csp_block(w4), csp_block(w5)])

    def forward(self, inputs: Tuple[torch.Tensor, ...]) -> Tuple[torch.Tensor, ...]:
        if len(inputs) != 3:
            raise ValueError(f'YOLOv4CSPNeck takes 3 feature maps (strides 8/16/32), got {len(inputs)}')
        c3, c4, c5 = inputs
        n5 = self.spp_csp(c5)
        top_down = [n5]
        for reduce, lateral, block, lower in zip(self.reduce_convs, self.lateral_convs, self.top_down_blocks,
                                                 (c4, c3)):
            upsampled = self.upsample(reduce(top_down[-1]))
            top_down.append(block(torch.cat((lateral(lower), upsampled), dim=1)))
        n5, n4, p3 = top_down
        outs = [p3]
        for downsample, block, lateral in zip(self.downsample_convs, self.bottom_up_blocks, (n4, n5)):
            outs.append(block(torch.cat((downsample(outs[-1]), lateral), dim=1)))
        return tuple(outs)
