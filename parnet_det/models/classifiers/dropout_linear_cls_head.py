"""mmpretrain's linear classification head with a dropout before its linear layer (registered in mmpretrain's
MODELS: the ImageNet configs import it through parnet_det.mmpretrain_registration)."""
from typing import Tuple

import torch
import torch.nn as nn
from mmpretrain.models.heads import LinearClsHead
from mmpretrain.registry import MODELS


@MODELS.register_module()
class DropoutLinearClsHead(LinearClsHead):
    """``fc(dropout(x))`` on the last pooled feature: :class:`LinearClsHead` with a dropout before ``fc``.

    The official ParNet release's ImageNet networks end so (``dropout_lin``, rate 0.1 for ParNet-L and
    XL, 0 for S and M); the dropout has no parameters, so the state dict is ``LinearClsHead``'s
    (``fc.weight``, ``fc.bias``) and converted official weights load into it strictly.

    Args:
        dropout (float): The rate; 0 is ``LinearClsHead``. Defaults to 0.
        **kwargs: ``LinearClsHead``'s arguments (``num_classes``, ``in_channels``, ``loss``, ...).
    """

    def __init__(self, dropout: float = 0.0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.dropout = nn.Dropout(dropout)

    def pre_logits(self, feats: Tuple[torch.Tensor]) -> torch.Tensor:
        return self.dropout(super().pre_logits(feats))
