"""Re-parameterisation of whole models: every foldable block folded, every ConvModule's BatchNorm folded.

The blocks fold themselves (``switch_to_deploy()`` of the ParNet blocks, see
:class:`~parnet_det.models.layers.ReparamConv`); these functions walk a model.
"""
import torch.nn as nn
from mmcv.cnn import ConvModule
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.utils.fusion import fuse_conv_bn_eval

from .layers.csp_layers import BottleneckCSP


def switch_to_deploy(model: nn.Module) -> int:
    """Re-parameterise, in place, every block of ``model`` that can fold itself.

    Works on a block, a backbone, a classifier or a whole detector: every
    module with a ``switch_to_deploy()`` method (the ParNet blocks, see
    :class:`~parnet_det.models.layers.ReparamConv`) swaps its training
    branches for the equivalent convolution. Outputs are unchanged in eval
    mode. Returns the number of blocks folded by this call.
    """
    folded = 0
    for module in list(model.modules()):
        if hasattr(module, 'switch_to_deploy') and not getattr(module, 'deploy', False):
            module.switch_to_deploy()
            folded += 1
    return folded


def fold_conv_module_norms(model: nn.Module) -> int:
    """Fold, in place, the BatchNorm of every mmcv ``ConvModule`` (conv, then norm) into its conv, and the
    norm after each YOLOv5-form CSP block's concatenation into its two plain convs
    (:meth:`~parnet_det.models.layers.csp_layers.BottleneckCSP.fold_norm`).

    The neck and head of mmdet's detectors (YOLOX's PAFPN and head, the
    CSPDarknet53s baseline's layers) are ConvModules whose BatchNorm costs one
    more kernel per convolution at inference; folded, the conv carries the
    norm's scale and shift (``torch.nn.utils.fusion.fuse_conv_bn_eval``), and
    eval-mode outputs are unchanged. Only these two are touched, where it is
    known which conv(s) the norm follows: mmcv's ``fuse_conv_bn`` folds a BN
    into whichever conv precedes it among its siblings, which is wrong for
    ParNet's identity norm and the CSP concatenation norm. Returns the number
    of norms folded.
    """
    folded = 0
    for module in model.modules():
        if (isinstance(module, ConvModule) and module.with_norm and isinstance(module.norm, _BatchNorm)
                and module.order.index('conv') < module.order.index('norm') and not module.training):
            module.conv = fuse_conv_bn_eval(module.conv, module.norm)
            setattr(module, module.norm_name, nn.Identity())
            folded += 1
        elif isinstance(module, BottleneckCSP):
            folded += module.fold_norm()
    return folded
