"""The re-parameterisable core shared by every ParNet block."""
from typing import Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule

from mmdet.utils import ConfigType, OptMultiConfig


def pad_to_even(x: torch.Tensor) -> torch.Tensor:
    """Zero-pad the bottom and right edges so that both sides are even.

    A 2x2 stride-2 average pool then covers exactly the pixels that the
    3x3 stride-2 padding-1 convolution's lower-right 2x2 taps cover, zeros
    included, so the pooled 1x1 branch folds into the 3x3 kernel exactly and
    any input size works (the official network needs even sides at every
    stride).
    """
    height, width = x.shape[-2:]
    if height % 2 or width % 2:
        x = F.pad(x, (0, width % 2, 0, height % 2))
    return x


def fuse_conv_bn(conv: nn.Conv2d, norm: nn.Module) -> Tuple[torch.Tensor, torch.Tensor]:
    """Kernel and bias of ``norm(conv(x))`` for a bias-free conv and an eval-mode BN."""
    if not hasattr(norm, 'running_var') or norm.running_var is None:
        raise TypeError(f'cannot fold {type(norm).__name__} into a convolution: re-parameterisation '
                        'needs a BatchNorm with running statistics (norm_cfg type BN or SyncBN)')
    std = (norm.running_var + norm.eps).sqrt()
    scale = norm.weight / std
    bias = norm.bias - norm.running_mean * scale
    if conv.bias is not None:
        bias = bias + conv.bias * scale
    return conv.weight * scale.reshape(-1, 1, 1, 1), bias


class ReparamConv(BaseModule):
    """Parallel 3x3-conv+BN and 1x1-conv+BN branches that fold into one 3x3 conv.

    Training form: ``BN(conv3x3(x)) + BN(conv1x1(pool(x)))``, where ``pool``
    is a 2x2 average pool when ``stride=2`` (ParNet's downsampling) and the
    identity when ``stride=1``. Both branches are linear in ``x``, so after
    training they equal one 3x3 convolution with a bias
    (:meth:`get_equivalent_kernel_bias`); :meth:`switch_to_deploy` swaps the
    branches for it, and ``deploy=True`` builds that form directly.

    Subclasses add ParNet's non-linear parts (gates, identity, activation)
    around :meth:`forward_linear`.

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        stride (int): 1 or 2. Defaults to 1.
        groups (int): Convolution groups. Defaults to 1.
        norm_cfg (dict): Norm layer of each branch. Defaults to BN.
        deploy (bool): Build the folded single-conv form. Defaults to False.
        init_cfg (dict or list[dict], optional): Initialization config.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 stride: int = 1,
                 groups: int = 1,
                 norm_cfg: ConfigType = dict(type='BN', requires_grad=True),
                 deploy: bool = False,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if stride not in (1, 2):
            raise ValueError(f'stride must be 1 or 2, got {stride}')
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.stride = stride
        self.groups = groups
        self.deploy = deploy
        if deploy:
            self.fused_conv = nn.Conv2d(
                in_channels, out_channels, 3, stride=stride, padding=1, groups=groups, bias=True)
        else:
            self.conv3x3 = ConvModule(
                in_channels, out_channels, 3, stride=stride, padding=1, groups=groups,
                norm_cfg=norm_cfg, act_cfg=None)
            self.conv1x1 = ConvModule(
                in_channels, out_channels, 1, groups=groups, norm_cfg=norm_cfg, act_cfg=None)

    def forward_linear(self, x: torch.Tensor) -> torch.Tensor:
        """Sum of the linear branches (or the folded conv)."""
        if self.deploy:
            return self.fused_conv(x)
        pooled = F.avg_pool2d(pad_to_even(x), 2) if self.stride == 2 else x
        return self.conv3x3(x) + self.conv1x1(pooled)

    @torch.no_grad()
    def get_equivalent_kernel_bias(self) -> Tuple[torch.Tensor, torch.Tensor]:
        """The 3x3 kernel and bias equal to the linear branches in eval mode."""
        if self.deploy:
            return self.fused_conv.weight, self.fused_conv.bias
        kernel3x3, bias3x3 = fuse_conv_bn(self.conv3x3.conv, self.conv3x3.norm)
        kernel1x1, bias1x1 = fuse_conv_bn(self.conv1x1.conv, self.conv1x1.norm)
        if self.stride == 2:
            # avg-pool 2x2 then 1x1 == a 2x2 kernel of w/4 on the taps (1..2, 1..2)
            # of a stride-2, padding-1 3x3 window.
            kernel1x1 = F.pad(kernel1x1.repeat_interleave(2, 2).repeat_interleave(2, 3) / 4, (1, 0, 1, 0))
        else:
            kernel1x1 = F.pad(kernel1x1, (1, 1, 1, 1))
        return kernel3x3 + kernel1x1, bias3x3 + bias1x1

    def switch_to_deploy(self) -> None:
        """Replace the training branches by the equivalent single 3x3 conv, in place."""
        if self.deploy:
            return
        kernel, bias = self.get_equivalent_kernel_bias()
        fused_conv = nn.Conv2d(
            self.in_channels, self.out_channels, 3, stride=self.stride, padding=1,
            groups=self.groups, bias=True).to(kernel.device, kernel.dtype)
        fused_conv.weight.data.copy_(kernel)
        fused_conv.bias.data.copy_(bias)
        del self.conv3x3, self.conv1x1
        self.fused_conv = fused_conv
        self.deploy = True
