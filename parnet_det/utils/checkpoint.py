"""Safe checkpoint loading for mmengine under ``torch.load(weights_only=True)``.

torch >= 2.6 unpickles checkpoints with ``weights_only=True``: only tensors,
containers and allow-listed types. mmengine 0.10.7 checkpoints also hold its
``MessageHub`` history (``HistoryBuffer`` objects around numpy arrays), so
``--resume`` fails out of the box. The usual work-around, turning the safety
off (``weights_only=False`` or ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD``), lets any
checkpoint run arbitrary code. Instead this module allow-lists exactly the
types that mmengine and mmdet checkpoints contain and replaces mmengine's
local-file loader by one that keeps ``weights_only=True`` and turns a refusal
into an error that says what was refused and what to do.
"""
import os.path as osp
import pickle
from typing import Callable, List, Optional, Tuple, Union

import numpy as np
import torch
from mmengine.logging import HistoryBuffer
from mmengine.runner.checkpoint import CheckpointLoader


class UnsafeCheckpointError(pickle.UnpicklingError):
    """A checkpoint holds Python objects outside the allow-list (possibly code)."""


def _numpy_globals() -> List[Callable]:
    # numpy moved its core to numpy._core in 2.0; pickles name whichever wrote them.
    # An array pickles as _reconstruct(ndarray, ...) with a dtype; a numpy
    # scalar (e.g. a float64 in runtime_info) as scalar(dtype, bytes).
    # The dtype object is then BUILT from its class: float64 for HistoryBuffer's
    # histories, float32 / int64 for numpy scalars that hooks log.
    multiarray = np._core.multiarray if hasattr(np, '_core') else np.core.multiarray
    dtype_classes = [type(np.dtype(name)) for name in ('float64', 'float32', 'int64')]
    return [multiarray._reconstruct, multiarray.scalar, np.ndarray, np.dtype, *dtype_classes]


# The statistics methods HistoryBuffer itself defines. A HistoryBuffer pickles
# them as ``getattr(HistoryBuffer, name)``.
_HISTORY_BUFFER_METHODS = ('min', 'max', 'current', 'mean')


def history_buffer_method(owner: type, name: str) -> Callable:
    """Stands in for ``builtins.getattr`` while unpickling, for exactly one use.

    Allowing the real ``getattr`` would let a checkpoint reach any attribute of
    any allowed object; this resolves only ``HistoryBuffer.<min|max|current|mean>``.
    """
    if owner is not HistoryBuffer or name not in _HISTORY_BUFFER_METHODS:
        raise pickle.UnpicklingError(
            f'checkpoint asks for getattr({getattr(owner, "__name__", owner)!r}, {name!r}); only '
            f'HistoryBuffer.{"/".join(_HISTORY_BUFFER_METHODS)} are allowed')
    return getattr(HistoryBuffer, name)


def mmengine_checkpoint_globals() -> List[Union[Callable, Tuple[Callable, str]]]:
    """Everything beyond tensors and containers found in mmengine / mmdet checkpoints.

    ``message_hub`` holds ``HistoryBuffer`` objects whose state is numpy arrays,
    numpy scalars and HistoryBuffer's statistics methods (``log_scalars``,
    ``runtime_info``); everything else (``state_dict``, ``optimizer``,
    ``param_schedulers``, ``meta`` with the config text and ``dataset_meta``)
    is tensors, numbers, strings and containers.
    """
    return [HistoryBuffer, (history_buffer_method, 'builtins.getattr'), *_numpy_globals()]


def load_checkpoint_file(filename: str, map_location: Optional[str] = None) -> dict:
    """``torch.load(weights_only=True)`` with mmengine's types allowed and a clear refusal."""
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'checkpoint {filename} can not be found.')
    try:
        return torch.load(filename, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        refused = str(err).split('\n')
        detail = next((line.strip() for line in refused if 'GLOBAL' in line or 'Unsupported' in line), refused[0])
        raise UnsafeCheckpointError(
            f'refused to load checkpoint {filename}: it contains Python objects that are neither tensors nor '
            f'types known to be in mmengine/mmdet checkpoints ({detail}). Loading it could execute code, so '
            'parnet_det keeps torch.load(weights_only=True). If the file is yours and trusted, re-save only its '
            "tensors (e.g. {'state_dict': ...}); the allow-list is "
            'parnet_det.utils.checkpoint.mmengine_checkpoint_globals().') from err


def install_safe_checkpoint_loading() -> None:
    """Allow-list mmengine's checkpoint types and route local loads through the safe loader.

    Called when ``parnet_det`` is imported. ``add_safe_globals`` only widens
    what ``weights_only=True`` accepts by these types; nothing turns it off.
    """
    torch.serialization.add_safe_globals(mmengine_checkpoint_globals())
    CheckpointLoader.register_scheme(prefixes='', force=True)(load_checkpoint_file)
