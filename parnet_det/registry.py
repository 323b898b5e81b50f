"""The one registration step: what ``import parnet_det`` does to MMDetection and mmengine.

1. Every module of the package registers into MMDetection's registries (scope
   ``mmdet``), so configs reach them through ``custom_imports``: backbones,
   necks, classifiers, datasets, transforms, hooks.
2. ``nn.Mish`` becomes the activation 'Mish' of mmdet's ``MODELS`` (mmcv 2.1
   has ReLU, SiLU, ... but no Mish; the CSPDarknet53s baseline uses it).
3. mmengine's checkpoint loading stays under ``torch.load(weights_only=True)``
   while resuming works (:func:`~parnet_det.utils.checkpoint.install_safe_checkpoint_loading`).

Nothing is printed; :func:`register_all_modules` is idempotent.
"""
import torch.nn as nn

from mmdet.registry import MODELS

from . import datasets, engine, models  # noqa: F401  (their decorators register the modules)
from .utils.checkpoint import install_safe_checkpoint_loading


def register_all_modules() -> None:
    """Run steps 2 and 3 above (step 1 happens on import); safe to call again."""
    if 'Mish' not in MODELS.module_dict:
        MODELS.register_module(name='Mish', module=nn.Mish)
    install_safe_checkpoint_loading()
