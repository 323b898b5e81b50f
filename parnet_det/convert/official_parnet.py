"""Convert the official ParNet ImageNet checkpoints to this project's module names.

The official release (imankgoyal/NonDeepNetworks) saves timm-style
``.pth.tar`` files with ``state_dict`` and ``state_dict_ema`` in the training
form. Its modules map one to one onto :class:`ParNet` / :class:`ParNetClassifier`;
the table below is the whole mapping.
"""
import argparse
import re
from collections import OrderedDict
from typing import Dict, List, Optional, Tuple

import torch

from ..models.backbones.parnet import ARCH_SETTINGS
from ..models.classifiers import ParNetClassifier
from ..utils.checkpoint import load_checkpoint_file

# Official module prefix -> project module prefix (classifier form).
_MODULE_PATTERNS: List[Tuple[str, str]] = [
    (r'inits\.0\.(\d+)\.block\.', r'backbone.stem.\1.'),
    (r'inits\.([12])\.block\.', lambda m: f'backbone.stream_entries.{int(m.group(1)) - 1}.'),
    (r'streams\.(\d+)\.(\d+)\.block\.', r'backbone.streams.\1.blocks.\2.'),
    (r'downsamples_2\.0\.block\.', 'backbone.stream1_downsample.'),
    (r'downsamples_2\.1\.0\.b1\.', 'backbone.fusions.0.norm_stream.'),
    (r'downsamples_2\.1\.0\.b2\.', 'backbone.fusions.0.norm_fused.'),
    (r'downsamples_2\.1\.2\.block\.', 'backbone.fusions.0.block.'),
    (r'combine\.0\.b1\.', 'backbone.fusions.1.norm_stream.'),
    (r'combine\.0\.b2\.', 'backbone.fusions.1.norm_fused.'),
    (r'combine\.2\.block\.', 'backbone.fusions.1.block.'),
    (r'combine\.3\.block\.', 'backbone.final_downsample.'),
    (r'head\.fc\.', 'head.fc.'),
]
# Official branch names inside a block -> project names.
_BRANCH_PATTERNS: List[Tuple[str, str]] = [
    (r'^rbr_dense\.(conv|bn)\.', r'conv3x3.\1.'),
    (r'^rbr_1x1\.(?:1\.)?(conv|bn)\.', r'conv1x1.\1.'),  # ".1." behind the avg-pool of stride-2 blocks
    (r'^rbr_identity\.', 'identity_norm.'),
    (r'^se\.cvsig\.conv\.weight$', 'se_gate.weight'),
]


class ConversionError(ValueError):
    """The source checkpoint does not fit the ParNet it describes."""


def map_official_key(key: str) -> Optional[str]:
    """Project name (classifier form) of an official key, or None if it has none."""
    for pattern, replacement in _MODULE_PATTERNS:
        match = re.match(pattern, key)
        if match is None:
            continue
        prefix = replacement(match) if callable(replacement) else match.expand(replacement)
        rest = key[match.end():]
        if prefix.startswith('head.') or '.norm_' in prefix:
            return prefix + rest
        for branch_pattern, branch_replacement in _BRANCH_PATTERNS:
            branch = re.match(branch_pattern, rest)
            if branch is not None:
                return prefix + branch.expand(branch_replacement) + rest[branch.end():]
        return None
    return None


def infer_arch(state_dict: Dict[str, torch.Tensor]) -> dict:
    """ParNet arch dict read off the official checkpoint's shapes."""
    def out_channels(key: str) -> int:
        if key not in state_dict:
            raise ConversionError(f'not an official ParNet checkpoint: key {key!r} is missing')
        return int(state_dict[key].shape[0])

    num_blocks = []
    for stream in range(3):
        blocks = {int(m.group(1)) for k in state_dict if (m := re.match(rf'streams\.{stream}\.(\d+)\.', k))}
        num_blocks.append(len(blocks))
    return dict(
        stream_channels=tuple(out_channels(f'streams.{i}.0.block.rbr_dense.conv.weight') for i in range(3)),
        final_channels=out_channels('combine.3.block.rbr_dense.conv.weight'),
        num_blocks=tuple(num_blocks),
        stem_channels=out_channels('inits.0.0.block.rbr_dense.conv.weight'))


def preset_name(arch: dict) -> Optional[str]:
    """Name of the preset equal to ``arch``, if any."""
    for name, preset in ARCH_SETTINGS.items():
        if all(arch[k] == preset[k] for k in preset) and arch['stem_channels'] == min(64, preset['stream_channels'][0]):
            return name
    return None


def load_official_state_dict(path: str, weights: str = 'state_dict') -> Dict[str, torch.Tensor]:
    """The official ``state_dict`` (default) or ``state_dict_ema`` (``weights='ema'``) of ``path``.

    The plain ``state_dict`` is what the release's validate commands evaluate (timm's
    ``validate.py`` without ``--use-ema``): the weights of its published top-1.

    Read by :func:`~parnet_det.utils.checkpoint.load_checkpoint_file`; timm's
    checkpoints may also hold the training ``args`` (an ``argparse.Namespace``),
    allowed for this load only.
    """
    checkpoint = load_checkpoint_file(path, map_location='cpu', extra_safe_globals=[argparse.Namespace])
    if not isinstance(checkpoint, dict):
        raise ConversionError(f'{path}: expected a dict, found {type(checkpoint).__name__}')
    entry = {'ema': 'state_dict_ema', 'state_dict': 'state_dict'}[weights]
    if entry in checkpoint:
        state_dict = checkpoint[entry]
    elif any(k.startswith(('inits.', 'module.inits.')) for k in checkpoint):
        state_dict = checkpoint  # a bare state dict
    else:
        raise ConversionError(f'{path} has no {entry!r} (top-level keys: {sorted(checkpoint)[:10]}); '
                              "choose the weights with --weights state_dict|ema")
    return OrderedDict((k[len('module.'):] if k.startswith('module.') else k, v) for k, v in state_dict.items())


def convert_official(state_dict: Dict[str, torch.Tensor], form: str = 'backbone') -> Tuple[dict, dict]:
    """Official state dict -> (project state dict, report).

    ``form='classifier'`` gives :class:`ParNetClassifier` names, ``'backbone'``
    the :class:`ParNet` names (for ``init_cfg=dict(type='Pretrained', ...)``)
    without the classification head. Every official key is either converted
    or listed in ``report['unused']``; every project parameter and buffer must
    be covered and of the right shape, or :class:`ConversionError` is raised.
    """
    if form not in ('backbone', 'classifier'):
        raise ValueError(f"form must be 'backbone' or 'classifier', got {form!r}")
    arch = infer_arch(state_dict)
    num_classes = int(state_dict['head.fc.weight'].shape[0]) if 'head.fc.weight' in state_dict else 1000
    expected = ParNetClassifier(arch=arch, num_classes=num_classes).state_dict()

    converted, unused, mismatched = OrderedDict(), [], []
    for key, value in state_dict.items():
        new_key = map_official_key(key)
        if new_key is None or new_key not in expected:
            unused.append(key)
        elif tuple(value.shape) != tuple(expected[new_key].shape):
            mismatched.append(f'{key} -> {new_key}: checkpoint {tuple(value.shape)}, '
                              f'ParNet {arch} expects {tuple(expected[new_key].shape)}')
        else:
            converted[new_key] = value
    if mismatched:
        raise ConversionError('shape mismatch between the checkpoint and the ParNet its shapes describe:\n  '
                              + '\n  '.join(mismatched))
    missing = [k for k in expected if k not in converted]
    if missing:
        raise ConversionError(f'{len(missing)} ParNet entries have no source in the checkpoint, '
                              f'e.g. {missing[:5]}; is it a complete official ParNet checkpoint?')
    if form == 'backbone':
        converted = OrderedDict(
            (k[len('backbone.'):], v) for k, v in converted.items() if k.startswith('backbone.'))
    report = dict(arch=arch, preset=preset_name(arch), num_classes=num_classes,
                  converted=len(converted), unused=unused,
                  dropped_head=[k for k in state_dict if k.startswith('head.')] if form == 'backbone' else [])
    return converted, report
