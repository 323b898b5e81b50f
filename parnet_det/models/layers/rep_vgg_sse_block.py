"""ParNet's stream block: RepVGG with a skip-squeeze-excitation branch."""
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import build_activation_layer, build_norm_layer

from mmdet.utils import ConfigType, OptMultiConfig

from .reparam_conv import ReparamConv


class RepVGGSSEBlock(ReparamConv):
    """RepVGG-SSE block (Non-deep Networks, Fig. 2), stride 1, ``C -> C``.

    ``act(BN(conv3x3 x) + BN(conv1x1 x) + BN(x) * sigmoid(conv1x1(GAP(BN(x)))))``

    The skip branch is a BatchNorm gated by a squeeze-excitation that reads
    that same BatchNorm's output (a single bias-free 1x1 conv, no reduction:
    the paper's "skip-squeeze-excitation"). The gate depends on the whole
    image, so the skip branch cannot fold into a convolution; only the 3x3 and
    1x1 branches do (:meth:`get_equivalent_kernel_bias`), exactly as in the
    official release's fused form.

    Args:
        channels (int): Input and output channels.
        norm_cfg (dict): Norm layers. Defaults to BN.
        act_cfg (dict): Activation after the sum. Defaults to SiLU.
        deploy (bool): Build the folded form. Defaults to False.
        init_cfg (dict or list[dict], optional): Initialization config.
    """

    def __init__(self,
                 channels: int,
                 norm_cfg: ConfigType = dict(type='BN', requires_grad=True),
                 act_cfg: ConfigType = dict(type='SiLU'),
                 deploy: bool = False,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(channels, channels, stride=1, norm_cfg=norm_cfg, deploy=deploy, init_cfg=init_cfg)
        self.identity_norm = build_norm_layer(norm_cfg, channels)[1]
        self.se_gate = nn.Conv2d(channels, channels, 1, bias=False)
        self.activate = build_activation_layer(act_cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = self.identity_norm(x)
        skip = skip * torch.sigmoid(self.se_gate(F.adaptive_avg_pool2d(skip, 1)))
        return self.activate(self.forward_linear(x) + skip)
