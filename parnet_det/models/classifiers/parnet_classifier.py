"""ParNet's ImageNet classifier form, to check the network against the paper."""
from typing import Union

import torch
import torch.nn as nn
from mmengine.model import BaseModule

from mmdet.registry import MODELS
from mmdet.utils import OptMultiConfig


@MODELS.register_module()
class ParNetClassifier(BaseModule):
    """ParNet backbone (stride-32 output), global average pooling, dropout, linear.

    The official release's ImageNet network; its parameter counts, depth and
    outputs are what the tests and ``tools/convert_official_weights.py``
    compare against.

    Args:
        arch (str | dict): ParNet arch, see :class:`ParNet`. Defaults to 'xl'.
        num_classes (int): Defaults to 1000.
        dropout (float): Dropout before the linear layer. Defaults to 0.
        backbone_type (str): 'ParNet' or 'ParNetCSP'. Defaults to 'ParNet'.
        deploy (bool): Build the re-parameterised form. Defaults to False.
        init_cfg (dict or list[dict], optional): Initialization config.
    """

    def __init__(self,
                 arch: Union[str, dict] = 'xl',
                 num_classes: int = 1000,
                 dropout: float = 0.0,
                 backbone_type: str = 'ParNet',
                 deploy: bool = False,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.backbone = MODELS.build(dict(type=backbone_type, arch=arch, out_indices=(3,), deploy=deploy))
        self.head = nn.Sequential()
        self.head.add_module('dropout', nn.Dropout(dropout))
        self.head.add_module('fc', nn.Linear(self.backbone.out_channels[0], num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.backbone(x)[0]
        return self.head(features.mean(dim=(2, 3)))
