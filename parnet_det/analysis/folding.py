"""BatchNorms left that could fold: the check that a model's deploy form is folded throughout."""
from typing import Any, List

import torch
import torch.nn as nn
from torch.nn.modules.batchnorm import _BatchNorm

# Autograd nodes of a convolution, and of a concatenation along channels (a norm after the concatenation of
# convolutions folds into them, each conv taking its channels' scale and shift).
_CONV_NODES = ('Convolution', 'CudnnConvolution', 'MkldnnConvolution', 'SlowConv')
_CAT_NODE = 'CatBackward0'


def _only_convolutions(node: Any) -> bool:
    """The tensor made by ``node`` is a convolution's output, or a concatenation of such outputs."""
    name = type(node).__name__
    if name.startswith(_CONV_NODES):
        return True
    if name == _CAT_NODE:
        inputs = [child for child, _ in node.next_functions if child is not None]
        return bool(inputs) and all(_only_convolutions(child) for child in inputs)
    return False


def foldable_norms(model: nn.Module, input_shape=(1, 3, 64, 64)) -> List[str]:
    """Names of the BatchNorms of ``model`` whose input is straight a convolution's output (or a concatenation
    of convolution outputs): each could be folded into its convolution(s) and is not.

    The model runs once in eval mode on zeros of ``input_shape``, its autograd
    graph recorded; a norm used on several paths is named once. Training mode
    and ``requires_grad`` are restored afterwards.
    """
    was_training = model.training
    requires_grad = {p: p.requires_grad for p in model.parameters()}
    found: List[str] = []

    def check(name):
        def hook(module, args, output):
            source = output.grad_fn.next_functions[0][0] if output.grad_fn is not None else None
            if source is not None and _only_convolutions(source) and name not in found:
                found.append(name)
        return hook

    handles = [module.register_forward_hook(check(name)) for name, module in model.named_modules()
               if isinstance(module, _BatchNorm)]
    model.eval()
    try:
        for param in model.parameters():
            param.requires_grad_(True)
        device = next(model.parameters()).device
        with torch.enable_grad():
            model(torch.zeros(input_shape, device=device))
    finally:
        for handle in handles:
            handle.remove()
        for param, flag in requires_grad.items():
            param.requires_grad_(flag)
        model.train(was_training)
    return found
