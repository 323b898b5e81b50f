"""Parameter and FLOP counts, through mmengine's analysis tools."""
from typing import Sequence

import torch
import torch.nn as nn
from mmengine.analysis import FlopAnalyzer


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_flops(model: nn.Module, input_shape: Sequence[int] = (1, 3, 224, 224)) -> int:
    """FLOPs of one forward pass, counted as 2 x multiply-adds (the paper's convention).

    mmengine's FlopAnalyzer counts one fused multiply-add as one "flop"; this
    doubles it. Element-wise ops (activations, gates, BN in eval) are not counted.
    """
    was_training = model.training
    model.eval()
    try:
        device = next(model.parameters()).device
        with torch.no_grad():
            analyzer = FlopAnalyzer(model, torch.zeros(*input_shape, device=device))
            analyzer.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
            return 2 * analyzer.total()
    finally:
        model.train(was_training)
