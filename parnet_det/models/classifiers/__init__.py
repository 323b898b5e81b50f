# dropout_linear_cls_head (mmpretrain's head) is imported by parnet_det.mmpretrain_registration only: detection runs
# without mmpretrain.
from .parnet_classifier import ParNetClassifier

__all__ = ['ParNetClassifier']
