"""The one registration step: what ``import parnet_det`` does to MMDetection and mmengine.

1. Every module of the package registers into MMDetection's registries (scope
   ``mmdet``), so configs reach them through ``custom_imports``: backbones,
   necks, classifiers, datasets, transforms, hooks.
2. ``nn.Mish`` becomes the activation 'Mish' of mmengine's root ``MODELS``
   (mmcv 2.1 has ReLU, SiLU, ... but no Mish; the CSPDarknet53s baseline uses
   it). The root registry, where mmcv registers its own activations, because
   mmcv's ``build_activation_layer`` searches it without a default scope and
   every scope's registry (mmdet's, a downstream project's) falls back to it.
3. mmengine's checkpoint loading stays under ``torch.load(weights_only=True)``
   while resuming works (:func:`~parnet_det.utils.checkpoint.install_safe_checkpoint_loading`).

mmpretrain is not needed, nor imported here: the ImageNet configs, which run
under its scope, bring the package's models and hooks into its registries
themselves through ``custom_imports`` (:mod:`parnet_det.mmpretrain_registration`),
so detection users need not install it. (Where it is installed, mmdet's own
re-ID modules import it anyway, in a try/except.)

Nothing is printed; :func:`register_all_modules` is idempotent.
"""
import torch.nn as nn
from mmengine.registry import MODELS as ROOT_MODELS

from . import datasets, engine, models  # noqa: F401  (their decorators register the modules)
from .utils.checkpoint import install_safe_checkpoint_loading


def register_all_modules() -> None:
    """Run steps 2 and 3 above (step 1 happens on import); safe to call again."""
    if 'Mish' not in ROOT_MODELS.module_dict:
        ROOT_MODELS.register_module(name='Mish', module=nn.Mish)
    install_safe_checkpoint_loading()
