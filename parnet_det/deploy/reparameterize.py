"""Fold ParNet's training-time branches for inference."""
import torch
import torch.nn as nn
from mmcv.cnn import ConvModule
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.utils.fusion import fuse_conv_bn_eval

from ..utils.checkpoint import load_checkpoint_file, load_weights_strictly
from ..utils.fileio import atomic_write, check_writable_file


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
    """Fold, in place, the BatchNorm of every mmcv ``ConvModule`` (conv, then norm) into its conv.

    The neck and head of mmdet's detectors (YOLOX's PAFPN and head, the
    CSPDarknet53s baseline's layers) are ConvModules whose BatchNorm costs one
    more kernel per convolution at inference; folded, the conv carries the
    norm's scale and shift (``torch.nn.utils.fusion.fuse_conv_bn_eval``), and
    eval-mode outputs are unchanged. Only ConvModules are touched, where the
    norm is known to follow the conv: mmcv's ``fuse_conv_bn`` folds a BN into
    whichever conv precedes it among its siblings, which is wrong for
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
    return folded


def reparameterize_checkpoint(cfg, checkpoint: str, out: str) -> int:
    """Build ``cfg.model``, load ``checkpoint``, fold it and save the deploy checkpoint to ``out``.

    The written file loads (strictly) into the same config with
    ``deploy=True`` on its ParNet backbone; it appears complete or not at all.
    Every check (``out`` writable, the checkpoint readable, training form,
    fitting the config) comes before the work. Returns the number of folded blocks.
    """
    from mmengine.registry import init_default_scope

    from mmdet.registry import MODELS

    check_writable_file(out)
    loaded = load_checkpoint_file(checkpoint, map_location='cpu')
    meta = dict(loaded.get('meta') or {})
    if meta.get('deploy'):
        raise ValueError(f'{checkpoint} is already a deploy checkpoint (folded by tools/reparameterize.py from '
                         f'{meta.get("reparameterized_from", "a training checkpoint")}); use it as it is')
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    model = MODELS.build(cfg.model)
    load_weights_strictly(model, loaded, checkpoint)
    model.eval()
    folded = switch_to_deploy(model)
    if folded == 0:
        raise ValueError(f'{checkpoint}: the model of this config has no block to fold (not a ParNet model?)')
    meta.update(deploy=True, reparameterized_from=str(checkpoint))
    with atomic_write(out) as f:
        torch.save(dict(state_dict=model.state_dict(), meta=meta), f)
    return folded
