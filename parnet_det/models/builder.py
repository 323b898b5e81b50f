"""A detector from its config and checkpoint: the one way every caller builds one.

It sits with the models, below the engine, the deploy tools and the benchmark
that all call it; users reach it as :func:`parnet_det.apis.build_detector`.
"""
import copy
import difflib
from typing import Optional, Union

import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.registry import init_default_scope

from mmdet.registry import MODELS

from ..utils.checkpoint import load_checkpoint_file, load_weights_strictly
from ..utils.config import load_config
from ..utils.device import check_device
from .reparameterize import switch_to_deploy


def model_class(cfg: Config) -> type:
    """The class of ``cfg.model``, after checking that it and each part it names directly (backbone, neck,
    head, ...) are registered: a misspelled type is one ``ValueError`` with the nearest registered name, not
    mmengine's ``None`` (``issubclass() arg 1 must be a class``) or a build-time traceback. Under the
    config's default scope."""
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    parts = [('model', cfg.model)] + [(f'model.{key}', value) for key, value in cfg.model.items()
                                      if isinstance(value, dict) and isinstance(value.get('type'), str)]
    # The registry MODELS.build uses: the default scope's (mmpretrain's for the ImageNet configs).
    with MODELS.switch_scope_and_registry(None) as registry:
        for key, part in parts:
            if isinstance(part.get('type'), str) and registry.get(part['type']) is None:
                names = [*registry.module_dict, *(registry.parent.module_dict if registry.parent else {})]
                near = difflib.get_close_matches(part['type'].split('.')[-1], names, n=1, cutoff=0.6)
                raise ValueError(f'{key}.type={part["type"]!r} is not a registered model type'
                                 + (f'; did you mean {near[0]!r}?' if near else '; check the spelling in the config'))
        return registry.get(cfg.model.type)


def build_detector(config: Union[str, Config], checkpoint: Optional[str] = None,
                   device: Union[str, torch.device] = 'cpu', *, cfg_options: Optional[dict] = None,
                   fold: bool = False) -> nn.Module:
    """Build the detector of ``config``, load ``checkpoint`` strictly, optionally fold it; in eval mode.

    A checkpoint written by ``tools/reparameterize.py`` (``meta.deploy``)
    loads into the folded form (``deploy=True`` on the backbone, and on an implicit head) directly.
    As in mmdet's ``init_detector``, the config used (with ``cfg_options``)
    becomes ``model.cfg`` and the checkpoint's ``meta.dataset_meta`` (class
    names, palette) ``model.dataset_meta``.

    Args:
        config (str | Config): The config file, or a loaded config (copied, not changed).
        checkpoint (str, optional): Weights; None keeps the initialisation.
        device (str | torch.device): Where the model goes. Defaults to 'cpu'.
        cfg_options (dict, optional): Overrides, as ``--cfg-options``.
        fold (bool): Fold every foldable block (:func:`switch_to_deploy`) after loading.

    Raises:
        FileNotFoundError: ``config`` does not exist.
        CheckpointError: ``checkpoint`` is missing, broken or unsafe
            (:func:`~parnet_det.utils.checkpoint.load_checkpoint_file`), or does
            not fit the model, naming the first differing keys and shapes.
        ValueError: ``device`` is not usable here.
    """
    device = check_device(device)
    cfg = load_config(config, cfg_options) if isinstance(config, str) else copy.deepcopy(config)
    if cfg_options and not isinstance(config, str):
        cfg.merge_from_dict(cfg_options)
    model_class(cfg)  # a misspelled type, before the checkpoint is read
    loaded = load_checkpoint_file(checkpoint, map_location='cpu') if checkpoint is not None else None
    meta = (loaded.get('meta') or {}) if loaded is not None else {}
    if meta.get('deploy'):
        cfg.model.backbone.deploy = True
        if cfg.model.get('bbox_head', {}).get('implicit'):
            cfg.model.bbox_head.deploy = True  # YOLOR's implicit head, folded into its prediction convs
    model = MODELS.build(cfg.model)
    model.cfg = cfg
    if loaded is not None:
        load_weights_strictly(model, loaded, checkpoint)
        model.dataset_meta = meta.get('dataset_meta')
    model.eval()
    if fold:
        switch_to_deploy(model)
    return model.to(device)
