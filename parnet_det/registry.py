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
4. The package's models and hooks also go into mmpretrain's ``MODELS`` and
   ``HOOKS`` (scope ``mmpretrain``): the ImageNet configs (``configs/imagenet/``)
   run under mmpretrain's scope, as mmpretrain's own configs do, and build
   ``ImageClassifier(backbone=dict(type='ParNet'))`` and the training hooks from there.

Nothing is printed; :func:`register_all_modules` is idempotent.
"""
import torch.nn as nn
from mmengine.registry import MODELS as ROOT_MODELS
from mmpretrain import registry as mmpretrain_registry

from mmdet import registry as mmdet_registry

from . import datasets, engine, models  # noqa: F401  (their decorators register the modules)
from .utils.checkpoint import install_safe_checkpoint_loading

# The registries whose parnet_det modules the ImageNet configs need under mmpretrain's scope.
_SHARED_WITH_MMPRETRAIN = ('MODELS', 'HOOKS')


def register_in_mmpretrain() -> None:
    """Step 4: every parnet_det module of mmdet's ``MODELS`` and ``HOOKS``, under the same name in mmpretrain's."""
    for name in _SHARED_WITH_MMPRETRAIN:
        source, target = getattr(mmdet_registry, name), getattr(mmpretrain_registry, name)
        for key, module in source.module_dict.items():
            if module.__module__.startswith(f'{__package__}.') and key not in target.module_dict:
                target.register_module(name=key, module=module)


def register_all_modules() -> None:
    """Run steps 2 to 4 above (step 1 happens on import); safe to call again."""
    if 'Mish' not in ROOT_MODELS.module_dict:
        ROOT_MODELS.register_module(name='Mish', module=nn.Mish)
    install_safe_checkpoint_loading()
    register_in_mmpretrain()
