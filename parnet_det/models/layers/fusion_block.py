"""ParNet's fusion block: merges two streams."""
from typing import Tuple

import torch
from mmcv.cnn import build_norm_layer
from mmengine.model import BaseModule

from mmdet.utils import ConfigType, OptMultiConfig

from .channel_ops import interleave_channels
from .downsampling_block import DownsamplingBlock


class FusionBlock(BaseModule):
    """Fuse a stream's output with the running fused features.

    Each input gets its own BatchNorm (the two come from different depths and
    have different statistics), they are interleaved channel by channel, and a
    ``groups=2`` :class:`DownsamplingBlock` reduces ``2C`` to ``out_channels``
    and shuffles its output. Half the cost of a dense conv on the
    concatenation, while every group sees both inputs.

    Args:
        in_channels (int): Channels of *each* input.
        out_channels (int): Output channels.
        stride (int): 2 when the fused result moves to the next stride, 1 when
            both inputs are already at the output stride. Defaults to 2.
        norm_cfg (dict): Norm layers. Defaults to BN.
        act_cfg (dict): Activation. Defaults to SiLU.
        deploy (bool): Build the folded form. Defaults to False.
        init_cfg (dict or list[dict], optional): Initialization config.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 stride: int = 2,
                 norm_cfg: ConfigType = dict(type='BN', requires_grad=True),
                 act_cfg: ConfigType = dict(type='SiLU'),
                 deploy: bool = False,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.norm_stream = build_norm_layer(norm_cfg, in_channels)[1]
        self.norm_fused = build_norm_layer(norm_cfg, in_channels)[1]
        self.block = DownsamplingBlock(
            2 * in_channels, out_channels, stride=stride, groups=2,
            norm_cfg=norm_cfg, act_cfg=act_cfg, deploy=deploy)

    def forward(self, inputs: Tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """Fuse ``(stream_output, fused_so_far)``; the stream's channels come first."""
        stream_output, fused = inputs
        return self.block(interleave_channels(self.norm_stream(stream_output), self.norm_fused(fused)))
