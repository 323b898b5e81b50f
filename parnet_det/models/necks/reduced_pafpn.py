"""The "reduced neck": backbone outputs mapped to the baseline's widths before YOLOX's PAFPN."""
from typing import Sequence, Tuple

import torch

from mmdet.models.necks import YOLOXPAFPN
from mmdet.registry import MODELS
from mmdet.utils import ConfigType, OptConfigType

from .level_reductions import LevelReductions


@MODELS.register_module()
class ReducedYOLOXPAFPN(YOLOXPAFPN):
    """YOLOX's PAFPN behind one 1x1 ConvModule per level.

    Each backbone output is reduced to the width the PAFPN is built for,

        y_i = act(BN(W_i x_i)),  W_i in R^{r_i x c_i},  then  PAFPN(y_1, ..., y_n),

    so that a wide backbone (ParNet-XL: 400/800/3200 channels) feeds the same
    PAFPN and head as the CSPDarknet53s baseline (256/512/1024), and two
    detectors differ only in the backbone and these n convolutions. The paper
    puts ParNet under a "reduced neck" without saying more; this is the
    smallest one that makes the comparison like for like. The reductions use
    the PAFPN's conv, norm and activation settings, so their BatchNorms
    fold like the PAFPN's (:class:`LevelReductions`).

    Args:
        in_channels (Sequence[int]): Backbone output widths, one per level.
        reduced_channels (Sequence[int]): Widths after the 1x1 convs, the
            PAFPN's input widths. Defaults to (256, 512, 1024), the baseline's.
        conv_cfg (dict, optional): Conv layers of the reductions and the PAFPN.
        norm_cfg (dict): Their norms. Defaults to YOLOX's BN (momentum 0.03, eps 0.001).
        act_cfg (dict): Their activation. Defaults to Swish.
        **kwargs: :class:`~mmdet.models.necks.YOLOXPAFPN`'s other arguments
            (``out_channels``, ``num_csp_blocks``, ``init_cfg``, ...).
    """

    def __init__(self,
                 in_channels: Sequence[int],
                 reduced_channels: Sequence[int] = (256, 512, 1024),
                 conv_cfg: OptConfigType = None,
                 norm_cfg: ConfigType = dict(type='BN', momentum=0.03, eps=0.001),
                 act_cfg: ConfigType = dict(type='Swish'),
                 **kwargs) -> None:
        reductions = LevelReductions(in_channels, reduced_channels, type(self).__name__, conv_cfg, norm_cfg, act_cfg)
        super().__init__(
            in_channels=list(reduced_channels), conv_cfg=conv_cfg, norm_cfg=norm_cfg, act_cfg=act_cfg, **kwargs)
        self.reductions = reductions

    def forward(self, inputs: Tuple[torch.Tensor, ...]) -> Tuple[torch.Tensor, ...]:
        return super().forward(self.reductions(inputs))
