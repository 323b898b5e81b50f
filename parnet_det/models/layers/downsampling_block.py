"""ParNet's downsampling block."""
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import build_activation_layer

from mmdet.utils import ConfigType, OptMultiConfig

from .channel_ops import channel_shuffle
from .reparam_conv import ReparamConv


class DownsamplingBlock(ReparamConv):
    """ParNet downsampling block (Non-deep Networks, Fig. 2).

    ``act((BN(conv3x3/s x) + BN(conv1x1(avgpool2x2 x))) * 2 * sigmoid(conv1x1(GAP x)))``

    There is no skip connection (the shapes change); instead a
    squeeze-excitation gate computed from the *input* scales the output by
    ``2 * sigmoid``, i.e. in ``(0, 2)`` and 1 at a zero logit. With
    ``groups > 1`` the output channels are shuffled, so that the next layer
    mixes the groups. The paper's fusion block uses this block with
    ``groups=2`` and, for its last fusion (both inputs at stride 16),
    ``stride=1``, where the average pool is dropped.

    The two convolution branches fold into one 3x3 conv
    (:meth:`get_equivalent_kernel_bias`); the gate stays.

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        stride (int): 2 to downsample, 1 for the last fusion. Defaults to 2.
        groups (int): Groups of all three convolutions. Defaults to 1.
        norm_cfg (dict): Norm layers. Defaults to BN.
        act_cfg (dict): Activation. Defaults to SiLU.
        deploy (bool): Build the folded form. Defaults to False.
        init_cfg (dict or list[dict], optional): Initialization config.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 stride: int = 2,
                 groups: int = 1,
                 norm_cfg: ConfigType = dict(type='BN', requires_grad=True),
                 act_cfg: ConfigType = dict(type='SiLU'),
                 deploy: bool = False,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(in_channels, out_channels, stride=stride, groups=groups,
                         norm_cfg=norm_cfg, deploy=deploy, init_cfg=init_cfg)
        self.se_gate = nn.Conv2d(in_channels, out_channels, 1, groups=groups, bias=False)
        self.activate = build_activation_layer(act_cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = 2 * torch.sigmoid(self.se_gate(F.adaptive_avg_pool2d(x, 1)))
        out = self.activate(self.forward_linear(x) * gate)
        return channel_shuffle(out, self.groups) if self.groups > 1 else out
