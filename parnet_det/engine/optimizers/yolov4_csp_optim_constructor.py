"""Scaled-YOLOv4's three optimizer parameter groups."""
from typing import Dict, List, Optional

import torch.nn as nn
from mmengine.optim import OptimWrapper
from torch.nn.modules.conv import _ConvNd

from mmdet.registry import OPTIM_WRAPPER_CONSTRUCTORS, OPTIM_WRAPPERS, OPTIMIZERS

# The groups in the recipe's order (train.py: pg0, then pg1 with decay, then pg2); the rate hook finds them by name.
GROUP_NAMES = ('no_decay', 'decay', 'bias')


def parameter_group(module: nn.Module, name: str) -> str:
    """The recipe's group of the parameter ``name`` held directly by ``module``.

    ``bias``: every parameter called ``bias`` (of convs and of BatchNorms alike);
    ``decay``: the weight of a convolution or linear layer; ``no_decay``: the rest
    (BatchNorm weights, YOLOR's ImplicitA / ImplicitM vectors, any other parameter).
    """
    if name == 'bias':
        return 'bias'
    if name == 'weight' and isinstance(module, (_ConvNd, nn.Linear)):
        return 'decay'
    return 'no_decay'


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class YOLOv4CSPOptimWrapperConstructor:
    """Scaled-YOLOv4's parameter groups (train.py): three groups, each tagged ``group_name``::

        no_decay: BatchNorm weights, implicit vectors, anything else    weight_decay 0
        decay:    conv and linear weights                               weight_decay = the optimizer's
        bias:     every bias                                            weight_decay 0

    All three take the optimizer's lr and momentum; ``YOLOv4CSPLrHook`` warms the
    ``bias`` group up from its own start. mmengine's ``DefaultOptimWrapperConstructor``
    with ``paramwise_cfg`` makes one group per parameter and gives YOLOR's implicit
    vectors weight decay (they are neither norm nor bias); yolor keeps them out of it.
    Parameters with ``requires_grad=False`` are left out (as mmengine does); a
    parameter shared by several modules is in its first module's group, once.

    Args:
        optim_wrapper_cfg (dict): ``optim_wrapper`` of the config (``type``, ``optimizer``, ...).
        paramwise_cfg (dict, optional): Not supported: the groups are the recipe's. Defaults to None.
    """

    def __init__(self, optim_wrapper_cfg: dict, paramwise_cfg: Optional[dict] = None) -> None:
        if paramwise_cfg:
            raise ValueError('YOLOv4CSPOptimWrapperConstructor builds the recipe\'s three groups and takes no '
                             f'paramwise_cfg (got {paramwise_cfg}): remove optim_wrapper.paramwise_cfg')
        if 'optimizer' not in optim_wrapper_cfg:
            raise KeyError('YOLOv4CSPOptimWrapperConstructor: optim_wrapper needs an optimizer=dict(type=..., lr=...)')
        self.optim_wrapper_cfg = dict(optim_wrapper_cfg)
        self.optimizer_cfg = dict(self.optim_wrapper_cfg.pop('optimizer'))
        weight_decay = self.optimizer_cfg.get('weight_decay', 0.0)
        if weight_decay < 0:
            raise ValueError(f'optim_wrapper.optimizer.weight_decay must be >= 0, got {weight_decay}')
        self.weight_decay = weight_decay

    def param_groups(self, model: nn.Module) -> List[Dict]:
        """The three groups of ``model``'s trainable parameters, in the order of :data:`GROUP_NAMES`."""
        params: Dict[str, list] = {name: [] for name in GROUP_NAMES}
        seen = set()
        for module in model.modules():
            for name, param in module.named_parameters(recurse=False):
                if not param.requires_grad or id(param) in seen:
                    continue
                seen.add(id(param))
                params[parameter_group(module, name)].append(param)
        return [dict(params=params[name], group_name=name,
                     weight_decay=self.weight_decay if name == 'decay' else 0.0) for name in GROUP_NAMES]

    def __call__(self, model: nn.Module) -> OptimWrapper:
        model = getattr(model, 'module', model)  # a DDP wrapper's model
        optimizer = OPTIMIZERS.build(dict(self.optimizer_cfg, params=self.param_groups(model)))
        wrapper_cfg = dict(self.optim_wrapper_cfg)
        wrapper_cfg.setdefault('type', 'OptimWrapper')
        return OPTIM_WRAPPERS.build(wrapper_cfg, default_args=dict(optimizer=optimizer))
