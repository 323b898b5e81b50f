"""CSPDarknet53s: the backbone of YOLOv4-CSP (Scaled-YOLOv4), the baseline ParNet is compared with."""
import math
from typing import List, Sequence, Tuple

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule
from torch.nn.modules.batchnorm import _BatchNorm

from mmdet.registry import MODELS
from mmdet.utils import ConfigType, OptMultiConfig

from ..layers.csp_layers import YOLO_BN, BottleneckCSP, DarknetCSPBlock, ResidualBottleneck
from ..utils.widths import make_divisible

# Stride of each output index: 0 the stem (after its residual bottleneck),
# 1-4 the four CSP stages.
OUT_STRIDES = (2, 4, 8, 16, 32)
# The CSP block of each ``csp_form``.
CSP_BLOCKS = dict(shared_norm=BottleneckCSP, per_branch=DarknetCSPBlock)


@MODELS.register_module()
class CSPDarknet53s(BaseModule):
    """CSPDarknet53s, the backbone of YOLOv4-CSP (Scaled-YOLOv4, ``yolov4-csp.cfg``).

    Topology (module names in brackets)::

        conv 3x3 s1 (32) -> conv 3x3 s2 (64)
            -> residual bottleneck (64, hidden 32)            [stem]      out 0: stride 2
        conv 3x3 s2 (128)  -> BottleneckCSP x2                [stage1]    out 1: stride 4
        conv 3x3 s2 (256)  -> BottleneckCSP x8                [stage2]    out 2: stride 8
        conv 3x3 s2 (512)  -> BottleneckCSP x8                [stage3]    out 3: stride 16
        conv 3x3 s2 (1024) -> BottleneckCSP x4                [stage4]    out 4: stride 32

    ("BottleneckCSP xN" is one CSP block holding N residual bottlenecks, see
    :class:`BottleneckCSP`.) The longest path of convolutions is 64 (stem 4,
    then ``2n + 4`` per stage: 8 + 20 + 20 + 12). Output sizes are
    ``ceil(input / stride)``. Every conv is followed by BN and Mish, except,
    with ``csp_form='shared_norm'`` (the default, YOLOv5's later form of the
    block, :class:`BottleneckCSP`), the two plain 1x1 convs of each CSP block,
    which share one BN after their concatenation; ``csp_form='per_branch'``
    is the form of darknet's ``yolov4-csp.cfg`` (:class:`DarknetCSPBlock`,
    each branch with its own BN and Mish, the official weights' layout).
    With ``widen_factor = deepen_factor = 1`` there are 26,596,192 parameters
    in both forms (see ``tests/test_models/test_cspdarknet53s.py``).

    Stages past ``max(out_indices)`` are not built (an unused module would
    break DDP without ``find_unused_parameters``); a ``Pretrained`` checkpoint
    of the full backbone then reports its extra keys.

    Args:
        out_indices (Sequence[int]): Outputs to return, from 0 (stride 2,
            64 channels) to 4 (stride 32, 1024 channels). Defaults to
            (2, 3, 4): strides 8/16/32 with 256/512/1024 channels.
        widen_factor (float): Width multiplier; each width is rounded up to a
            multiple of 8. Defaults to 1.0.
        deepen_factor (float): Depth multiplier of the bottleneck counts
            (``max(round(n * deepen_factor), 1)``). Defaults to 1.0.
        frozen_stages (int): Stages to freeze (eval mode, no gradients): -1
            none, 0 the stem (with its residual bottleneck), ``k`` the stem
            and the first ``k`` CSP stages. Defaults to -1.
        norm_cfg (dict): Norm layers. Defaults to
            ``dict(type='BN', momentum=0.03, eps=0.001)`` as in YOLO code.
        act_cfg (dict): Activation. Defaults to ``dict(type='Mish')``.
        norm_eval (bool): Keep norm layers in eval mode while training (frozen
            statistics). Defaults to False.
        with_cp (bool): Gradient checkpointing of the residual bottlenecks.
            Defaults to False.
        csp_form (str): 'shared_norm' (:class:`BottleneckCSP`) or
            'per_branch' (:class:`DarknetCSPBlock`, ``yolov4-csp.cfg``).
            Defaults to 'shared_norm'.
        init_cfg (dict or list[dict], optional): Initialization config.
            Defaults to Kaiming uniform (``a=sqrt(5)``) for Conv2d, as mmdet's
            ``CSPDarknet``.
    """

    # (out_channels, num_bottlenecks) of the four CSP stages.
    STAGE_SETTINGS = ((128, 2), (256, 8), (512, 8), (1024, 4))
    STEM_CHANNELS = (32, 64)

    def __init__(self,
                 out_indices: Sequence[int] = (2, 3, 4),
                 widen_factor: float = 1.0,
                 deepen_factor: float = 1.0,
                 frozen_stages: int = -1,
                 norm_cfg: ConfigType = YOLO_BN,
                 act_cfg: ConfigType = dict(type='Mish'),
                 norm_eval: bool = False,
                 with_cp: bool = False,
                 csp_form: str = 'shared_norm',
                 init_cfg: OptMultiConfig = dict(
                     type='Kaiming', layer='Conv2d', a=math.sqrt(5), distribution='uniform',
                     mode='fan_in', nonlinearity='leaky_relu')) -> None:
        super().__init__(init_cfg=init_cfg)
        self.out_indices = tuple(out_indices)
        if not self.out_indices or not set(self.out_indices) <= set(range(len(OUT_STRIDES))):
            raise ValueError(f'out_indices must be a non-empty subset of 0..4, got {out_indices}')
        if not -1 <= frozen_stages <= len(self.STAGE_SETTINGS):
            raise ValueError(f'frozen_stages must be in -1..4, got {frozen_stages}')
        if widen_factor <= 0 or deepen_factor <= 0:
            raise ValueError(f'widen_factor and deepen_factor must be positive, '
                             f'got {widen_factor} and {deepen_factor}')
        if csp_form not in CSP_BLOCKS:
            raise ValueError(f'csp_form must be one of {sorted(CSP_BLOCKS)}, got {csp_form!r}')
        self.widen_factor = widen_factor
        self.deepen_factor = deepen_factor
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval

        common = dict(norm_cfg=norm_cfg, act_cfg=act_cfg)
        stem_mid, stem_out = (make_divisible(c * widen_factor) for c in self.STEM_CHANNELS)
        self.stem = nn.Sequential(
            ConvModule(3, stem_mid, 3, padding=1, **common),
            ConvModule(stem_mid, stem_out, 3, stride=2, padding=1, **common),
            ResidualBottleneck(stem_out, stem_out, expansion=0.5, with_cp=with_cp, **common))
        self.layers: List[str] = ['stem']
        self._channels = [stem_out]
        in_channels = stem_out
        for i, (channels, num_blocks) in enumerate(self.STAGE_SETTINGS[:max(self.out_indices)]):
            out_channels = make_divisible(channels * widen_factor)
            num_blocks = max(round(num_blocks * deepen_factor), 1)
            stage = nn.Sequential(
                ConvModule(in_channels, out_channels, 3, stride=2, padding=1, **common),
                CSP_BLOCKS[csp_form](out_channels, out_channels, num_blocks=num_blocks, with_cp=with_cp, **common))
            self.add_module(f'stage{i + 1}', stage)
            self.layers.append(f'stage{i + 1}')
            self._channels.append(out_channels)
            in_channels = out_channels
        self.out_channels = [self._channels[i] for i in self.out_indices]
        self._freeze_stages()

    def _freeze_stages(self) -> None:
        for name in self.layers[:self.frozen_stages + 1]:
            module = getattr(self, name)
            module.eval()
            for param in module.parameters():
                param.requires_grad = False

    def train(self, mode: bool = True) -> 'CSPDarknet53s':
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for module in self.modules():
                if isinstance(module, _BatchNorm):
                    module.eval()
        return self

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        outs = []
        for i, name in enumerate(self.layers):
            x = getattr(self, name)(x)
            if i in self.out_indices:
                outs.append(x)
        return tuple(outs)
