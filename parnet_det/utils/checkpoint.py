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

It is the one way parnet_det reads a checkpoint (:func:`load_checkpoint_file`,
with a distinct error for a missing, empty, truncated or foreign, and unsafe
file), loads it strictly into a model (:func:`load_weights_strictly`) and
picks the checkpoint that ``--resume`` continues from (:func:`find_resume_checkpoint`).
"""
import _compat_pickle
import os
import os.path as osp
import pickle
import pickletools
import re
import zipfile
from collections import OrderedDict
from typing import Callable, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from mmengine.logging import HistoryBuffer
from mmengine.model import is_model_wrapper
from mmengine.runner.checkpoint import CheckpointLoader
from torch import _weights_only_unpickler as weights_only_unpickler
from torch import nn


class CheckpointError(ValueError):
    """A checkpoint cannot be used; the message says which file and why."""


class CheckpointNotFoundError(CheckpointError, FileNotFoundError):
    """The checkpoint file does not exist."""


class CorruptCheckpointError(CheckpointError):
    """The file is empty, truncated (an interrupted save) or not a checkpoint at all."""


class UnsafeCheckpointError(CheckpointError, pickle.UnpicklingError):
    """A checkpoint holds Python objects outside the allow-list (possibly code)."""


class LegacyCheckpointError(CheckpointError):
    """A checkpoint in torch's legacy format with a pickle protocol the safe loader cannot read."""


class CheckpointMismatchError(CheckpointError):
    """A checkpoint's weights do not fit the model of the config."""


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


# Every torch checkpoint starts with one of these: a zip archive (torch >= 1.6) or, in the legacy
# format, torch's magic number pickled with the protocol the saver chose: b'\x80' and the protocol,
# from protocol 4 on a frame (b'\x95' and its 8-byte length), then the number.
_ZIP_MAGIC = b'PK\x03\x04'
_LEGACY_HEADER = re.compile(rb'\x80([\x02-\x05])(?:\x95.{8})?\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19', re.DOTALL)
# torch's weights-only unpickler reads the legacy format up to this protocol.
_SAFE_LEGACY_PROTOCOL = 3


# A darknet .weights file starts with int32 version major 0, minor 1 or 2 (then revision and ``seen``).
_DARKNET_VERSION_HEADS = (b'\x00\x00\x00\x00\x01\x00\x00\x00', b'\x00\x00\x00\x00\x02\x00\x00\x00')


def _is_darknet_weights(filename: str, head: bytes) -> bool:
    return filename.endswith('.weights') or head.startswith(_DARKNET_VERSION_HEADS)


# What torch.load says about a damaged file that passed the structure check.
_DAMAGE_MESSAGES = ('PytorchStreamReader', 'magic number', 'corrupt')


def _check_structure(filename: str) -> None:
    """Tell an empty, truncated or foreign file apart before torch.load gives a raw error."""
    size = osp.getsize(filename)
    if size == 0:
        raise CorruptCheckpointError(f'checkpoint {filename} is empty (0 bytes): the save that wrote it was '
                                     'interrupted, or it was never written')
    with open(filename, 'rb') as f:
        head = f.read(32)
    legacy = _LEGACY_HEADER.match(head)
    if head.startswith(_ZIP_MAGIC):
        if not zipfile.is_zipfile(filename):
            raise CorruptCheckpointError(f'checkpoint {filename} is truncated ({size} bytes, its end is missing): '
                                         'the save that wrote it was interrupted')
    elif legacy:
        protocol = legacy.group(1)[0]
        if protocol > _SAFE_LEGACY_PROTOCOL:
            raise LegacyCheckpointError(
                f'{filename} is a PyTorch checkpoint in the legacy (pre-1.6) format with pickle protocol {protocol}, '
                "which torch's safe loader cannot read: if you trust the file, save it once in the current format, "
                f"python -c \"import torch; torch.save(torch.load('{filename}', weights_only=False), 'NEW.pth')\", "
                'and pass NEW.pth')
    elif _is_darknet_weights(filename, head):
        raise CorruptCheckpointError(
            f'{filename} is a darknet .weights file, not a PyTorch checkpoint: convert it first with '
            f'python tools/convert_darknet_weights.py CONFIG {filename} OUT.pth, then pass OUT.pth')
    else:
        raise CorruptCheckpointError(f'{filename} is not a PyTorch checkpoint (it starts with {head[:8]!r})')


def _python3_name(module: str, name: str) -> str:
    """``module.name`` as Python 3 calls it: torch saves with pickle protocol 2, which writes some names the
    Python 2 way (``subprocess.call`` as ``commands call``); the unpickler maps them back so."""
    module, name = _compat_pickle.NAME_MAPPING.get(
        (module, name), (_compat_pickle.IMPORT_MAPPING.get(module, module), name))
    return f'{module}.{name}'


def _legacy_globals(filename: str) -> List[str]:
    """The globals of a legacy-format checkpoint, read with ``pickletools`` (nothing is unpickled, nothing
    runs); torch's own reader of them takes the zip format only. Its pickles are protocol <= 3 here
    (:func:`_check_structure`): every global is a GLOBAL opcode."""
    found = []
    with open(filename, 'rb') as f:
        for _ in range(5):  # magic number, protocol, system info, the object, the storage keys; then raw data
            try:
                found += [_python3_name(*arg.split(' ', 1)) for opcode, arg, _ in pickletools.genops(f)
                          if opcode.name == 'GLOBAL']
            except ValueError:  # past the pickles
                break
    return found


def refused_globals(filename: str) -> List[str]:
    """The globals of the checkpoint that ``torch.load(weights_only=True)`` refuses (code, or objects that are
    not weights), found in the file against torch's allow-lists (torch's
    ``get_unsafe_globals_in_checkpoint`` for the zip format), not in the wording of torch's error, which
    changes between versions (2.14 words a blocked module, ``os`` / ``posix``, apart)."""
    if zipfile.is_zipfile(filename):  # torch's names are as written: mapped as the unpickler maps them
        return sorted({_python3_name(*name.rsplit('.', 1))
                       for name in torch.serialization.get_unsafe_globals_in_checkpoint(filename)})
    # torch keeps its allow-lists private; they are what the refusal was made against.
    allowed = {*weights_only_unpickler._get_allowed_globals(), *weights_only_unpickler._get_user_allowed_globals()}
    return sorted({name for name in _legacy_globals(filename) if name not in allowed})


def load_checkpoint_file(filename: str, map_location: Optional[str] = None,
                         extra_safe_globals: Sequence[Callable] = ()) -> dict:
    """Read a checkpoint with ``torch.load(weights_only=True)``, mmengine's types allowed.

    The one way parnet_det reads checkpoints. Each failure has its own error:
    :class:`CheckpointNotFoundError`, :class:`CorruptCheckpointError` (empty,
    truncated, not a checkpoint) and :class:`UnsafeCheckpointError` (pickled
    objects outside the allow-list, e.g. code). ``extra_safe_globals`` widens
    the allow-list for this call only.
    """
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise CheckpointNotFoundError(f'checkpoint {filename} does not exist')
    _check_structure(filename)
    try:
        with torch.serialization.safe_globals(list(extra_safe_globals)):
            return torch.load(filename, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        try:
            with torch.serialization.safe_globals(list(extra_safe_globals)):
                refused = refused_globals(filename)
        except (ValueError, RuntimeError):  # torch's reader refuses the archive itself (e.g. TorchScript's)
            refused = []
        if not refused:  # a damaged stream, not a reference to code
            raise CorruptCheckpointError(f'checkpoint {filename} is damaged: {_first_line(err)}') from err
        # torch's message advises weights_only=False, which would run that code: none of it is passed on.
        raise UnsafeCheckpointError(
            f'refused to load checkpoint {filename}: it contains code or Python objects that are not weights '
            f'({", ".join(refused[:5])}{", ..." if len(refused) > 5 else ""}); loading it could execute code, so it '
            'was not loaded. Use a checkpoint saved by parnet_det, mmdet or mmengine training; if this file is yours, '
            "save only its tensors again where it was made (e.g. torch.save({'state_dict': model.state_dict()}, "
            'PATH)).') from None
    except (EOFError, RuntimeError) as err:
        # The structure looked right, the content is cut or damaged inside (e.g. a bad zip member);
        # other RuntimeErrors (e.g. CUDA tensors without CUDA) are not about the file.
        if isinstance(err, RuntimeError) and not any(s in str(err) for s in _DAMAGE_MESSAGES):
            raise
        raise CorruptCheckpointError(f'checkpoint {filename} is damaged: {_first_line(err)}') from err


def _first_line(err: BaseException) -> str:
    """The gist of torch's error, without the advice it appends (``weights_only=False`` among it)."""
    text = str(err)
    found = re.search(r'WeightsUnpickler error:\s*(.+)', text)
    lines = [line.strip() for line in text.splitlines() if line.strip() and 'weights_only' not in line]
    return found.group(1).strip() if found else (lines[0] if lines else type(err).__name__)


def checkpoint_meta(filename: str) -> dict:
    """The ``meta`` of a checkpoint read safely (:func:`load_checkpoint_file`), ``{}`` if the file is not a
    usable checkpoint: to recognise a tool's own earlier output (e.g. ``meta['deploy']``) before replacing it."""
    try:
        return dict(load_checkpoint_file(filename, map_location='cpu').get('meta') or {})
    except CheckpointError:
        return {}


def install_safe_checkpoint_loading() -> None:
    """Allow-list mmengine's checkpoint types and route local loads through the safe loader.

    Called when ``parnet_det`` is imported. ``add_safe_globals`` only widens
    what ``weights_only=True`` accepts by these types; nothing turns it off.
    """
    torch.serialization.add_safe_globals(mmengine_checkpoint_globals())
    CheckpointLoader.register_scheme(prefixes='', force=True)(load_checkpoint_file)


def _mismatch(expected: dict, found: dict, limit: int = 5) -> List[str]:
    """The first ``limit`` missing keys, unexpected keys and shape differences, with their counts."""
    missing = [k for k in expected if k not in found]
    unexpected = [k for k in found if k not in expected]
    shapes = [f'{k}: checkpoint {tuple(v.shape)}, model {tuple(expected[k].shape)}'
              for k, v in found.items() if k in expected and tuple(v.shape) != tuple(expected[k].shape)]
    return [f'{len(items)} {what}: {", ".join(items[:limit])}{", ..." if len(items) > limit else ""}'
            for what, items in (('missing keys', missing), ('unexpected keys', unexpected),
                                ('shape differences', shapes)) if items]


def check_weights_fit(model: nn.Module, checkpoint: dict, source: str) -> None:
    """Raise :class:`CheckpointMismatchError` naming the first differing keys and shapes unless
    ``checkpoint`` (as read by :func:`load_checkpoint_file`) has exactly ``model``'s weights."""
    target = model.module if is_model_wrapper(model) else model
    problems = _mismatch(target.state_dict(), model_state_dict(checkpoint))
    if problems:
        hint = ('it is a deploy checkpoint (tools/reparameterize.py): build the config with '
                'model.backbone.deploy=True, or use the training checkpoint'
                if (checkpoint.get('meta') or {}).get('deploy') else
                'was it trained with another config, or another num_classes?')
        raise CheckpointMismatchError(f'{source} does not fit the model of this config ({hint}):\n  '
                                      + '\n  '.join(problems))


def load_weights_strictly(model: nn.Module, checkpoint: dict, source: str) -> None:
    """Load ``checkpoint`` (as read by :func:`load_checkpoint_file`) into ``model``; every key must fit.

    mmengine's ``load_from`` is non-strict: it warns about missing keys and
    goes on with random weights. Here a mismatch raises
    :class:`CheckpointMismatchError` (:func:`check_weights_fit`).
    """
    check_weights_fit(model, checkpoint, source)
    (model.module if is_model_wrapper(model) else model).load_state_dict(model_state_dict(checkpoint), strict=True)


def model_state_dict(checkpoint: dict) -> OrderedDict:
    """The model's weights in ``checkpoint`` (its ``state_dict``, or the dict itself), without DDP's ``module.``
    prefix, with torch's ``_metadata`` (the norm layers' versions) kept: what mmengine's loader passes on."""
    state_dict = checkpoint.get('state_dict', checkpoint)
    plain = OrderedDict((re.sub(r'^module\.', '', k), v) for k, v in state_dict.items() if k != '_metadata')
    plain._metadata = getattr(state_dict, '_metadata', OrderedDict())
    return plain


_STEP_CHECKPOINT = re.compile(r'^(?:epoch|iter)_(\d+)\.pth$')


def find_resume_checkpoint(work_dir: str) -> Tuple[Optional[str], List[str]]:
    """The newest loadable checkpoint of ``work_dir``, and why each newer candidate was skipped.

    Candidates, in order: the file ``last_checkpoint`` names, looked up by name
    in ``work_dir`` first (the pointer holds an absolute path: a copied or moved
    work dir resumes from its own files, not the original's), then
    ``epoch_N.pth`` / ``iter_N.pth`` from the highest N.
    Missing, empty and truncated files are skipped; an unsafe one raises.
    """
    candidates, skipped = [], []
    pointer = osp.join(work_dir, 'last_checkpoint')
    if osp.isfile(pointer):
        with open(pointer) as f:
            target = f.read().strip()
        if not target:
            skipped.append(f'{pointer} is empty')
        elif osp.isfile(osp.join(work_dir, osp.basename(target))):
            candidates.append(osp.join(work_dir, osp.basename(target)))
        else:
            candidates.append(target)
    numbered = [(int(m.group(1)), name) for name in os.listdir(work_dir) if (m := _STEP_CHECKPOINT.match(name))]
    candidates += [osp.join(work_dir, name) for _, name in sorted(numbered, reverse=True)]
    for path in dict.fromkeys(osp.abspath(c) for c in candidates):
        try:
            load_checkpoint_file(path, map_location='cpu')
        except (CheckpointNotFoundError, CorruptCheckpointError) as err:
            skipped.append(str(err))
        else:
            return path, skipped
    return None, skipped
