from .dropout_linear_cls_head import DropoutLinearClsHead
from .parnet_classifier import ParNetClassifier

__all__ = ['DropoutLinearClsHead', 'ParNetClassifier']
