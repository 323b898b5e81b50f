"""Build a detector from a config, with its checkpoint loaded strictly."""
from typing import Optional

import torch.nn as nn
from mmengine.config import Config
from mmengine.registry import init_default_scope

from mmdet.registry import MODELS

from ..utils.checkpoint import load_checkpoint_file, load_weights_strictly


def build_detector(cfg: Config, checkpoint: Optional[str] = None) -> nn.Module:
    """``cfg.model`` built on the CPU, with ``checkpoint`` loaded strictly.

    Raises the errors of :func:`~parnet_det.utils.checkpoint.load_checkpoint_file`
    for a missing or broken file and
    :class:`~parnet_det.utils.checkpoint.CheckpointMismatchError`, naming the
    first differing keys and shapes, when the checkpoint does not fit the model.
    """
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    model = MODELS.build(cfg.model)
    if checkpoint is not None:
        load_weights_strictly(model, load_checkpoint_file(checkpoint, map_location='cpu'), checkpoint)
    return model
