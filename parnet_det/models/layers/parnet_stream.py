"""ParNet's parallel streams: a sequence of RepVGG-SSE blocks at one resolution."""
import torch
import torch.nn as nn
import torch.utils.checkpoint as cp
from mmengine.model import BaseModule

from mmdet.utils import ConfigType, OptMultiConfig

from .channel_ops import interleave_channels
from .rep_vgg_sse_block import RepVGGSSEBlock


class ParNetStream(BaseModule):
    """One ParNet stream: ``num_blocks`` RepVGG-SSE blocks, width and stride kept.

    Args:
        channels (int): Stream width.
        num_blocks (int): Number of blocks (the presets use 4, 5, 5).
        norm_cfg (dict): Norm layers. Defaults to BN.
        act_cfg (dict): Activation. Defaults to SiLU.
        with_cp (bool): Checkpoint each block in training to save memory
            (activations are recomputed in the backward pass). Defaults to False.
        deploy (bool): Build the folded form. Defaults to False.
        init_cfg (dict or list[dict], optional): Initialization config.
    """

    def __init__(self,
                 channels: int,
                 num_blocks: int,
                 norm_cfg: ConfigType = dict(type='BN', requires_grad=True),
                 act_cfg: ConfigType = dict(type='SiLU'),
                 with_cp: bool = False,
                 deploy: bool = False,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.with_cp = with_cp
        self.blocks = nn.Sequential(*[
            RepVGGSSEBlock(channels, norm_cfg=norm_cfg, act_cfg=act_cfg, deploy=deploy)
            for _ in range(num_blocks)
        ])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            if self.with_cp and self.training and x.requires_grad:
                x = cp.checkpoint(block, x, use_reentrant=False)
            else:
                x = block(x)
        return x


class CSPParNetStream(ParNetStream):
    """A ParNet stream with a cross-stage-partial bypass (CSPNet's principle).

    Half of the channels run through the RepVGG-SSE blocks at half width; the
    other half bypass them untouched. The two halves rejoin by channel
    interleaving, not by a transition convolution: the block after every
    stream (a downsampling or fusion block, both full 3x3 convolutions or
    ``groups=2`` convolutions over interleaved inputs) already mixes them, and
    an extra 1x1 would add a layer to the network's depth. Interleaving (rather
    than concatenation) makes each group of a following ``groups=2`` fusion
    convolution see processed and bypassed channels alike.

    The blocks' 3x3 convolutions work on ``C/2 -> C/2``: a quarter of the
    stream's multiply-adds and parameters, the depth unchanged.

    Args:
        channels (int): Stream width; must be even.
        num_blocks (int): Number of blocks.
        norm_cfg, act_cfg, with_cp, deploy, init_cfg: As :class:`ParNetStream`.
    """

    def __init__(self, channels: int, num_blocks: int, **kwargs) -> None:
        if channels % 2:
            raise ValueError(f'CSPParNetStream needs an even width, got {channels}')
        super().__init__(channels // 2, num_blocks, **kwargs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        processed, bypass = x.chunk(2, dim=1)
        return interleave_channels(super().forward(processed), bypass)
