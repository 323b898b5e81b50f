"""Network depth, measured: the longest path of weighted layers from input to output."""
from typing import Any, Dict, Iterable, Optional

import torch
import torch.nn as nn

# Autograd nodes of layers that carry weights. A matmul node counts only when
# one of its inputs is a parameter (see _reads_parameter), so an attention
# product between two activations is not a layer.
_WEIGHTED_NODE_PREFIXES = ('Convolution', 'CudnnConvolution', 'MkldnnConvolution', 'SlowConv')
_MATMUL_NODES = ('AddmmBackward0', 'MmBackward0', 'LinearBackward0')


def _reads_parameter(node: Any) -> bool:
    for child, _ in node.next_functions:
        # A parameter reaches a node through AccumulateGrad, possibly behind a
        # transpose / view / cast (linear's weight.t(), autocast).
        hops = 0
        while child is not None and hops < 4:
            if type(child).__name__ == 'AccumulateGrad':
                return True
            nexts = [c for c, _ in child.next_functions if c is not None]
            child = nexts[0] if len(nexts) == 1 else None
            hops += 1
    return False


def _is_weighted(node: Any) -> bool:
    name = type(node).__name__
    if name.startswith(_WEIGHTED_NODE_PREFIXES):
        return True
    return name in _MATMUL_NODES and _reads_parameter(node)


def _flatten(outputs: Any) -> Iterable[torch.Tensor]:
    if isinstance(outputs, torch.Tensor):
        yield outputs
    elif isinstance(outputs, dict):
        for value in outputs.values():
            yield from _flatten(value)
    elif isinstance(outputs, (list, tuple)):
        for value in outputs:
            yield from _flatten(value)


def measure_depth(model: nn.Module, input_shape=(1, 3, 64, 64), inputs: Optional[torch.Tensor] = None) -> int:
    """Trace ``model`` once and return the longest input-to-output path of conv/linear layers.

    The model runs in eval mode on ``inputs`` (or zeros of ``input_shape``)
    with gradients recorded; the autograd graph of every output tensor is then
    searched for the path with the most weighted layers (convolutions, and
    linear layers reading a parameter). Parallel branches count once, so a
    RepVGG block is one layer, as in the paper; a squeeze-excitation conv on a
    side path counts where it lies on the longest path. The model's training
    mode and parameters' ``requires_grad`` are restored afterwards.
    """
    was_training = model.training
    requires_grad = {p: p.requires_grad for p in model.parameters()}
    model.eval()
    try:
        for param in model.parameters():
            param.requires_grad_(True)
        device = next(model.parameters()).device
        x = inputs if inputs is not None else torch.zeros(input_shape, device=device)
        with torch.enable_grad():
            outputs = model(x.requires_grad_(True))
        roots = [t.grad_fn for t in _flatten(outputs) if t.grad_fn is not None]
        return _longest_weighted_path(roots)
    finally:
        for param, flag in requires_grad.items():
            param.requires_grad_(flag)
        model.train(was_training)


def _longest_weighted_path(roots) -> int:
    # Iterative post-order DFS over the autograd DAG (graphs of deep models
    # exceed Python's recursion limit); depth[node] = weighted(node) + max over inputs.
    depth: Dict[Any, int] = {}
    for root in roots:
        stack = [(root, False)]
        while stack:
            node, expanded = stack.pop()
            if node in depth:
                continue
            children = [c for c, _ in node.next_functions if c is not None]
            if expanded:
                depth[node] = int(_is_weighted(node)) + max((depth[c] for c in children), default=0)
            else:
                stack.append((node, True))
                stack.extend((c, False) for c in children if c not in depth)
    return max((depth[r] for r in roots), default=0)
