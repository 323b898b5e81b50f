"""The "reduced neck" convs: one 1x1 ConvModule per level, from a backbone's widths to a neck's."""
from typing import Sequence, Tuple

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule

from mmdet.utils import ConfigType, OptConfigType


class LevelReductions(nn.ModuleList):
    """``y_i = act(BN(W_i x_i))``, ``W_i`` in ``R^{r_i x c_i}``: one 1x1 ConvModule per level.

    A wide backbone (ParNet-XL: 400/800/3200 channels) then feeds a neck built for the
    CSPDarknet53s baseline's widths (256/512/1024), so two detectors differ only in the backbone
    and these convs. Their BatchNorms fold like any ConvModule's
    (:func:`~parnet_det.models.reparameterize.fold_conv_module_norms`).

    Args:
        in_channels (Sequence[int]): Backbone widths ``c_i``.
        reduced_channels (Sequence[int]): Neck input widths ``r_i``.
        owner (str): The neck's name, for the error message.
        conv_cfg, norm_cfg, act_cfg (dict): The ConvModules' settings (the neck's).
    """

    def __init__(self, in_channels: Sequence[int], reduced_channels: Sequence[int], owner: str,
                 conv_cfg: OptConfigType, norm_cfg: ConfigType, act_cfg: ConfigType) -> None:
        if len(in_channels) != len(reduced_channels):
            raise ValueError(f'{owner}: {len(in_channels)} in_channels {list(in_channels)} but '
                             f'{len(reduced_channels)} reduced_channels {list(reduced_channels)}; '
                             'give one width per level')
        super().__init__(
            ConvModule(width, reduced, 1, conv_cfg=conv_cfg, norm_cfg=norm_cfg, act_cfg=act_cfg)
            for width, reduced in zip(in_channels, reduced_channels))
        self.owner = owner

    def forward(self, inputs: Tuple[torch.Tensor, ...]) -> Tuple[torch.Tensor, ...]:
        if len(inputs) != len(self):
            raise ValueError(f'{self.owner} is built for {len(self)} levels (in_channels) but got {len(inputs)} '
                             'inputs; give the backbone as many out_indices as the neck has in_channels')
        return tuple(reduce(x) for reduce, x in zip(self, inputs))
