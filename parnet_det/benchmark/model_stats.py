"""Size of a detector by part: parameters and FLOPs of backbone, neck and head."""
from typing import Dict

import torch
import torch.nn as nn

from ..analysis import count_flops_by_module, count_parameters
from ..inference import DenseDetectorNetwork

# The detector's parts whose parameters and FLOPs each row reports: name in the rows -> attribute.
PARTS = {'backbone': 'backbone', 'neck': 'neck', 'head': 'bbox_head'}


def parameters_by_part(model: nn.Module) -> Dict[str, int]:
    """``params`` (whole detector) and ``params_<part>`` for backbone, neck and head."""
    counts = {f'params_{part}': count_parameters(getattr(model, attribute)) if hasattr(model, attribute) else 0
              for part, attribute in PARTS.items()}
    return dict(params=count_parameters(model), **counts)


def flops_by_part(model: nn.Module, resolution: int, device: torch.device) -> Dict[str, int]:
    """``flops_per_image`` (backbone + neck + head, no decoding) and ``flops_<part>`` on one image."""
    network = DenseDetectorNetwork(model).eval()
    names = {part: f'detector.{attribute}' for part, attribute in PARTS.items() if hasattr(model, attribute)}
    with torch.inference_mode(False):
        flops = count_flops_by_module(network, (1, 3, resolution, resolution), list(names.values()))
    return dict(flops_per_image=flops[''], **{f'flops_{part}': flops.get(name, 0) for part, name in names.items()})
