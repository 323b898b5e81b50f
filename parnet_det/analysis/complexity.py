"""Parameter and FLOP counts, through mmengine's analysis tools."""
from typing import Dict, Sequence

import torch
import torch.nn as nn
from mmengine.analysis import FlopAnalyzer


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_flops_by_module(model: nn.Module, input_shape: Sequence[int], names: Sequence[str]) -> Dict[str, int]:
    """FLOPs of one forward pass, in total (key '') and of each named submodule, as 2 x multiply-adds
    (the paper's convention).

    mmengine's FlopAnalyzer counts one fused multiply-add as one "flop"; this
    doubles it. Element-wise ops (activations, gates, BN in eval) are not counted.

    Args:
        model (nn.Module): Called as ``model(inputs)``.
        input_shape (Sequence[int]): Shape of the zero input.
        names (Sequence[str]): Submodule names as ``model.named_modules()`` gives them.
    """
    was_training = model.training
    model.eval()
    try:
        device = next(model.parameters()).device
        with torch.no_grad():
            analyzer = FlopAnalyzer(model, torch.zeros(*input_shape, device=device))
            analyzer.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
            per_module = analyzer.by_module()
            return {name: 2 * per_module[name] for name in ('', *names)}
    finally:
        model.train(was_training)


def count_flops(model: nn.Module, input_shape: Sequence[int] = (1, 3, 224, 224)) -> int:
    """FLOPs of one forward pass of ``model`` on zeros of ``input_shape`` (see :func:`count_flops_by_module`)."""
    return count_flops_by_module(model, input_shape, ())['']
