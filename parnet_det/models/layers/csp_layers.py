"""Bricks of YOLOv4-CSP's backbone (CSPDarknet53s) and neck: the residual bottleneck and
the CSP block in two forms (Scaled-YOLOv4's ``BottleneckCSP``, and ``yolov4-csp.cfg``'s).

The bottleneck is mmdet's ``DarknetBottleneck`` with gradient checkpointing; the
CSP block differs from mmdet's ``CSPLayer`` (YOLOv5/YOLOX's variant: a 1x1
ConvModule on both branches and no norm after the concatenation). These
layers are not registered.
"""
import torch
import torch.nn as nn
import torch.utils.checkpoint as cp
from mmcv.cnn import ConvModule, build_activation_layer, build_norm_layer
from mmengine.model import BaseModule
from torch.nn.modules.batchnorm import _BatchNorm

from mmdet.models.layers.csp_layer import DarknetBottleneck
from mmdet.utils import ConfigType, OptMultiConfig

# YOLO implementations' BatchNorm (PyTorch momentum convention).
YOLO_BN = dict(type='BN', momentum=0.03, eps=0.001)
# Scaled-YOLOv4's PyTorch port, whose weights give the published val2017 AP of YOLOv4-CSP (darknet: eps 1e-5;
# mmdet's YOLO default 1e-3 moves the boxes of the same weights by pixels).
YOLOV4_CSP_BN = dict(type='BN', momentum=0.03, eps=1e-4)


class ResidualBottleneck(DarknetBottleneck):
    """Darknet residual bottleneck, ``x + conv3x3(conv1x1(x))``: mmdet's ``DarknetBottleneck``, which has no
    gradient checkpointing, with ``with_cp``, and Mish by default.

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        expansion (float): Hidden width as a fraction of ``out_channels``:
            0.5 for the stem's bottleneck, 1.0 inside a CSP block.
            Defaults to 0.5.
        add_identity (bool): Add the residual connection (when the shapes agree). Defaults to True.
        norm_cfg (dict): Norm layers. Defaults to ``dict(type='BN', momentum=0.03, eps=0.001)``.
        act_cfg (dict): Activation. Defaults to ``dict(type='Mish')``.
        with_cp (bool): Gradient checkpointing (saves memory, costs a second
            forward in backward). Defaults to False.
        init_cfg (dict or list[dict], optional): Initialization config.
            Defaults to None.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 expansion: float = 0.5,
                 add_identity: bool = True,
                 norm_cfg: ConfigType = YOLO_BN,
                 act_cfg: ConfigType = dict(type='Mish'),
                 with_cp: bool = False,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(in_channels, out_channels, expansion=expansion, add_identity=add_identity,
                         norm_cfg=norm_cfg, act_cfg=act_cfg, init_cfg=init_cfg)
        self.with_cp = with_cp

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.with_cp and x.requires_grad:
            return cp.checkpoint(super().forward, x, use_reentrant=False)
        return super().forward(x)


class BottleneckCSP(BaseModule):
    """Cross-stage-partial block of YOLOv4-CSP (Scaled-YOLOv4's ``BottleneckCSP``).

    With ``c = out_channels * expansion``::

        main  = conv1x1(ConvModule: conv, BN, act)(x) -> n x ResidualBottleneck(c, c, expansion 1.0)
                -> plain conv1x1 (no norm, no act)
        short = plain conv1x1(x) (no norm, no act)
        out   = ConvModule 1x1 (2c -> out)(act(BN(cat(main, short))))

    The two branches are normalised together after the concatenation, which
    is what distinguishes it from mmdet's ``CSPLayer``. Longest conv path:
    ``2 * num_blocks + 3``.

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        num_blocks (int): Residual bottlenecks on the main branch. Defaults to 1.
        expansion (float): Width of each branch as a fraction of
            ``out_channels``. Defaults to 0.5.
        add_identity (bool): Residual connections in the bottlenecks.
            Defaults to True.
        norm_cfg (dict): Norm layers. Defaults to
            ``dict(type='BN', momentum=0.03, eps=0.001)``.
        act_cfg (dict): Activation. Defaults to ``dict(type='Mish')``.
        with_cp (bool): Gradient checkpointing of the bottlenecks.
            Defaults to False.
        init_cfg (dict or list[dict], optional): Initialization config.
            Defaults to None.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 num_blocks: int = 1,
                 expansion: float = 0.5,
                 add_identity: bool = True,
                 norm_cfg: ConfigType = YOLO_BN,
                 act_cfg: ConfigType = dict(type='Mish'),
                 with_cp: bool = False,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(init_cfg=init_cfg)
        mid_channels = int(out_channels * expansion)
        self.main_conv = ConvModule(in_channels, mid_channels, 1, norm_cfg=norm_cfg, act_cfg=act_cfg)
        self.blocks = nn.Sequential(*[
            ResidualBottleneck(mid_channels, mid_channels, expansion=1.0, add_identity=add_identity,
                               norm_cfg=norm_cfg, act_cfg=act_cfg, with_cp=with_cp)
            for _ in range(num_blocks)])
        self.main_out_conv = nn.Conv2d(mid_channels, mid_channels, 1, bias=False)
        self.short_conv = nn.Conv2d(in_channels, mid_channels, 1, bias=False)
        self.norm_name, norm = build_norm_layer(norm_cfg, 2 * mid_channels)
        self.add_module(self.norm_name, norm)
        self.activate = build_activation_layer(act_cfg)
        self.final_conv = ConvModule(2 * mid_channels, out_channels, 1, norm_cfg=norm_cfg, act_cfg=act_cfg)

    @property
    def norm(self) -> nn.Module:
        """The norm layer after the concatenation."""
        return getattr(self, self.norm_name)

    def fold_norm(self) -> bool:
        """Fold the norm after the concatenation into the two plain convs, in place (eval mode only).

        Per channel ``BN(y) = s * y + t`` with ``s = gamma / sqrt(var + eps)``,
        ``t = beta - mean * s``, and ``y`` is the output of ``main_out_conv`` in
        the first half of the channels, of ``short_conv`` in the second: each
        conv takes its half (``W' = s W``, bias ``t``), the norm becomes an
        identity. Returns whether a norm was folded.
        """
        norm = self.norm
        if not isinstance(norm, _BatchNorm) or norm.training:
            return False
        scale = norm.weight / torch.sqrt(norm.running_var + norm.eps)
        shift = norm.bias - norm.running_mean * scale
        for name, channels in (('main_out_conv', slice(0, self.main_out_conv.out_channels)),
                               ('short_conv', slice(self.main_out_conv.out_channels, None))):
            conv = getattr(self, name)
            folded = nn.Conv2d(conv.in_channels, conv.out_channels, 1, bias=True).to(conv.weight)
            folded.weight.data = (conv.weight * scale[channels].view(-1, 1, 1, 1)).detach()
            folded.bias.data = shift[channels].detach().clone()
            setattr(self, name, folded)
        setattr(self, self.norm_name, nn.Identity())
        return True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        main = self.main_out_conv(self.blocks(self.main_conv(x)))
        short = self.short_conv(x)
        out = self.activate(self.norm(torch.cat((main, short), dim=1)))
        return self.final_conv(out)


class DarknetCSPBlock(BaseModule):
    """Cross-stage-partial block as ``yolov4-csp.cfg`` writes it: every conv a ConvModule (conv, BN, act).

    With ``c = out_channels * expansion``::

        short = ConvModule 1x1 (in -> c)(x)                                  cfg 19 (split branch)
        main  = ConvModule 1x1 (in -> c)(x) -> n x ResidualBottleneck(c, c, expansion 1.0)
                -> ConvModule 1x1 (c -> c)                                   cfg 21, 22-45, 46
        out   = ConvModule 1x1 (2c -> out)(cat(main, short))                 cfg 47 (concat), 48

    Unlike :class:`BottleneckCSP` (YOLOv5's later form, one BN after the
    concatenation), each branch has its own BN and activation before the
    concatenation. With ``main_branch_convs=False`` (the CSP blocks of the
    cfg's neck, e.g. 120-127) the main branch is the bottlenecks alone:
    ``main = bottlenecks(x)``. The concatenation puts the main branch first,
    as the cfg's routes do. Longest conv path: ``2 * num_blocks + 3`` (``+ 1``
    without the main branch's 1x1 convs).

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        num_blocks (int): Bottlenecks on the main branch. Defaults to 1.
        expansion (float): Width of each branch as a fraction of ``out_channels``. Defaults to 0.5.
        add_identity (bool): Residual connections in the bottlenecks (the
            backbone's; the neck's have none). Defaults to True.
        main_branch_convs (bool): The 1x1 convs before and after the
            bottlenecks on the main branch. Defaults to True.
        norm_cfg (dict): Norm layers. Defaults to ``dict(type='BN', momentum=0.03, eps=0.001)``.
        act_cfg (dict): Activation. Defaults to ``dict(type='Mish')``.
        with_cp (bool): Gradient checkpointing of the bottlenecks. Defaults to False.
        init_cfg (dict or list[dict], optional): Initialization config. Defaults to None.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 num_blocks: int = 1,
                 expansion: float = 0.5,
                 add_identity: bool = True,
                 main_branch_convs: bool = True,
                 norm_cfg: ConfigType = YOLO_BN,
                 act_cfg: ConfigType = dict(type='Mish'),
                 with_cp: bool = False,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(init_cfg=init_cfg)
        mid_channels = int(out_channels * expansion)
        common = dict(norm_cfg=norm_cfg, act_cfg=act_cfg)
        # Registered in the cfg's layer order (the state dict then lists the convs as the weights file does).
        self.short_conv = ConvModule(in_channels, mid_channels, 1, **common)
        block_in = in_channels
        if main_branch_convs:
            self.main_conv = ConvModule(in_channels, mid_channels, 1, **common)
            block_in = mid_channels
        self.blocks = nn.Sequential(*[
            ResidualBottleneck(block_in if i == 0 else mid_channels, mid_channels, expansion=1.0,
                               add_identity=add_identity, with_cp=with_cp, **common)
            for i in range(num_blocks)])
        if main_branch_convs:
            self.transition_conv = ConvModule(mid_channels, mid_channels, 1, **common)
        self.final_conv = ConvModule(2 * mid_channels, out_channels, 1, **common)
        self.main_branch_convs = main_branch_convs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        short = self.short_conv(x)
        if self.main_branch_convs:
            main = self.transition_conv(self.blocks(self.main_conv(x)))
        else:
            main = self.blocks(x)
        return self.final_conv(torch.cat((main, short), dim=1))
