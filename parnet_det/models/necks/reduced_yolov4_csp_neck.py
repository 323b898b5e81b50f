"""The "reduced neck" in front of YOLOv4-CSP's SPP-CSP and CSP-PAN, for ParNet backbones."""
from typing import Sequence, Tuple

import torch

from mmdet.registry import MODELS
from mmdet.utils import ConfigType

from ..layers.csp_layers import YOLOV4_CSP_BN
from .level_reductions import LevelReductions
from .yolov4_csp_neck import YOLOv4CSPNeck


@MODELS.register_module()
class ReducedYOLOv4CSPNeck(YOLOv4CSPNeck):
    """YOLOv4-CSP's neck behind one 1x1 ConvModule per level (the paper's "reduced neck")::

        y_i = act(BN(W_i x_i)),  W_i in R^{r_i x c_i},  then  YOLOv4CSPNeck(y_3, y_4, y_5)

    with ``r = (256, 512, 1024)``, CSPDarknet53s's widths: a ParNet detector then has the
    published YOLOv4-CSP's neck and head unchanged, layer for layer, and differs from it only
    in the backbone and these three convs (:class:`LevelReductions`; the same idea as
    :class:`ReducedYOLOXPAFPN`). The reductions use the neck's norm and activation.

    Args:
        in_channels (Sequence[int]): Backbone widths (ParNet-XL: 400, 800, 3200).
        reduced_channels (Sequence[int]): Widths after the 1x1 convs. Defaults to (256, 512, 1024).
        norm_cfg (dict): Norms of the reductions and the neck. Defaults to BN (momentum 0.03, eps 1e-4).
        act_cfg (dict): Their activation. Defaults to Mish (YOLOR's variant: SiLU).
        **kwargs: :class:`YOLOv4CSPNeck`'s other arguments (``widen_factor``, ``init_cfg``).
    """

    def __init__(self,
                 in_channels: Sequence[int],
                 reduced_channels: Sequence[int] = (256, 512, 1024),
                 norm_cfg: ConfigType = YOLOV4_CSP_BN,
                 act_cfg: ConfigType = dict(type='Mish'),
                 **kwargs) -> None:
        reductions = LevelReductions(in_channels, reduced_channels, type(self).__name__, None, norm_cfg, act_cfg)
        super().__init__(in_channels=list(reduced_channels), norm_cfg=norm_cfg, act_cfg=act_cfg, **kwargs)
        self.reductions = reductions

    def forward(self, inputs: Tuple[torch.Tensor, ...]) -> Tuple[torch.Tensor, ...]:
        return super().forward(self.reductions(inputs))
