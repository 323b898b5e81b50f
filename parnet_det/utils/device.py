"""A clear refusal of a device this machine does not have."""
from typing import Union

import torch


def check_device(device: Union[str, torch.device]) -> torch.device:
    """``device`` as a ``torch.device``, or a ValueError if it is not usable here (instead of a driver error later)."""
    device = torch.device(device)
    if device.type != 'cuda':
        return device
    if not torch.cuda.is_available():
        why = 'this torch is built without CUDA' if torch.version.cuda is None else 'no CUDA GPU is visible'
        raise ValueError(f"device {device}: {why}; use device='cpu'")
    if device.index is not None and device.index >= torch.cuda.device_count():
        raise ValueError(f'device {device}: only {torch.cuda.device_count()} CUDA device(s) here '
                         f'(cuda:0 to cuda:{torch.cuda.device_count() - 1})')
    return device
