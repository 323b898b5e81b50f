"""The ImageNet configs' registration step: parnet_det's models and hooks into mmpretrain's registries.

The ImageNet configs (``configs/imagenet/``) run under mmpretrain's scope, as
mmpretrain's own configs do, and build ``ImageClassifier(backbone=dict(type='ParNet'))``
and the training hooks (tools/train.py's ``CrashSafeCheckpointHook``) from there.
They import this module through ``custom_imports``; ``import parnet_det`` does
not, so detection runs without mmpretrain installed (:mod:`parnet_det.registry`
is the package's own step, into MMDetection's registries).

Importing it registers every parnet_det module of mmdet's ``MODELS``, ``HOOKS``
and ``LOOPS`` (tools/train.py's resumable loop) under the same name in mmpretrain's, and the classifier head
``DropoutLinearClsHead`` (built on mmpretrain's ``LinearClsHead``) in mmpretrain's. Nothing is printed;
:func:`register_in_mmpretrain` is idempotent.
"""
from mmpretrain import registry as mmpretrain_registry

from mmdet import registry as mmdet_registry

import parnet_det  # noqa: F401  (registers the package's modules into mmdet's registries, the source here)
from parnet_det.models.classifiers.dropout_linear_cls_head import DropoutLinearClsHead  # noqa: F401 (mmpretrain's)

# The registries whose parnet_det modules the ImageNet configs need under mmpretrain's scope.
_SHARED_WITH_MMPRETRAIN = ('MODELS', 'HOOKS', 'LOOPS')


def register_in_mmpretrain() -> None:
    """Every parnet_det module of mmdet's ``MODELS``, ``HOOKS`` and ``LOOPS``, under the same name in mmpretrain's."""
    for name in _SHARED_WITH_MMPRETRAIN:
        source, target = getattr(mmdet_registry, name), getattr(mmpretrain_registry, name)
        for key, module in source.module_dict.items():
            if module.__module__.startswith('parnet_det.') and key not in target.module_dict:
                target.register_module(name=key, module=module)


register_in_mmpretrain()
