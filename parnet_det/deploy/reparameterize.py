"""Fold ParNet's training-time branches for inference."""
import torch
import torch.nn as nn


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


def reparameterize_checkpoint(cfg, checkpoint: str, out: str) -> int:
    """Build ``cfg.model``, load ``checkpoint``, fold it and save the deploy checkpoint to ``out``.

    The written file loads (strictly) into the same config with
    ``deploy=True`` on its ParNet backbone. Returns the number of folded blocks.
    """
    from mmengine.registry import init_default_scope
    from mmengine.runner import load_checkpoint

    from mmdet.registry import MODELS

    init_default_scope(cfg.get('default_scope', 'mmdet'))
    model = MODELS.build(cfg.model)
    loaded = load_checkpoint(model, checkpoint, map_location='cpu', strict=True)
    model.eval()
    folded = switch_to_deploy(model)
    if folded == 0:
        raise ValueError(f'{checkpoint}: the model of this config has no block to fold '
                         '(is it already a deploy checkpoint, or not a ParNet model?)')
    meta = dict(loaded.get('meta', {})) if isinstance(loaded, dict) else {}
    meta.update(deploy=True, reparameterized_from=str(checkpoint))
    torch.save(dict(state_dict=model.state_dict(), meta=meta), out)
    return folded
