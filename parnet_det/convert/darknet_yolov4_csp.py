"""Read darknet's ``yolov4-csp.weights`` into the project's YOLOv4-CSP detector, and write it back.

The darknet file is a header (int32 major, minor, revision, then ``seen``: uint64 from version 0.2
on, uint32 before) and float32 little-endian arrays of every ``[convolutional]`` layer in the cfg's
order: BN beta, gamma, running mean, running variance, then the weights (OIHW); the three head
convs have no BN and store their bias instead. Nothing else: the file must end after the last conv.

:data:`DARKNET_CONVS` maps each of the cfg's 115 convs to the detector's conv and BN modules. The
shapes come from the model the config builds (on the meta device: no memory for it), so the
expected float count, the class count and widths are the config's; a file of another cfg shows as
a float count that does not match (the message names the class count it would fit, if any).
"""
import math
import os
import os.path as osp
from collections import OrderedDict
from typing import BinaryIO, Dict, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

from mmdet.registry import MODELS

ConvSource = Tuple[int, str, Optional[str]]  # cfg layer index, conv module, its BN module (None: conv bias)


def _conv_bn(cfg_index: int, module: str) -> ConvSource:
    return cfg_index, f'{module}.conv', f'{module}.bn'


def _backbone_stage(stage: int, first: int, num_blocks: int) -> List[ConvSource]:
    """Stride-2 conv; split 1x1 (short branch); [route back]; 1x1 (main branch); residual units of
    1x1, 3x3 [, shortcut]; transition 1x1; [route: concat]; final 1x1."""
    csp = f'backbone.stage{stage}.1'
    convs = [_conv_bn(first, f'backbone.stage{stage}.0'), _conv_bn(first + 1, f'{csp}.short_conv'),
             _conv_bn(first + 3, f'{csp}.main_conv')]
    index = first + 4
    for block in range(num_blocks):
        convs += [_conv_bn(index, f'{csp}.blocks.{block}.conv1'), _conv_bn(index + 1, f'{csp}.blocks.{block}.conv2')]
        index += 3
    return convs + [_conv_bn(index, f'{csp}.transition_conv'), _conv_bn(index + 2, f'{csp}.final_conv')]


def _neck_csp(first: int, block: str) -> List[ConvSource]:
    """1x1 in; split 1x1 (short branch); [route back]; 1x1, 3x3, 1x1, 3x3 (no shortcuts); [route: concat]; final 1x1."""
    convs = [_conv_bn(first, f'{block}.in_conv'), _conv_bn(first + 1, f'{block}.csp.short_conv')]
    for unit in range(2):
        convs += [_conv_bn(first + 3 + 2 * unit, f'{block}.csp.blocks.{unit}.conv1'),
                  _conv_bn(first + 4 + 2 * unit, f'{block}.csp.blocks.{unit}.conv2')]
    return convs + [_conv_bn(first + 8, f'{block}.csp.final_conv')]


def _head_level(level: int, first: int) -> List[ConvSource]:
    """3x3 bridge conv with BN, then the prediction conv with bias."""
    return [_conv_bn(first, f'bbox_head.convs_bridge.{level}'), (first + 1, f'bbox_head.convs_pred.{level}', None)]


# The 115 convs of yolov4-csp.cfg in the order of the weights file: cfg layer index, the detector's modules.
DARKNET_CONVS: Tuple[ConvSource, ...] = tuple([
    _conv_bn(0, 'backbone.stem.0'), _conv_bn(1, 'backbone.stem.1'),
    _conv_bn(2, 'backbone.stem.2.conv1'), _conv_bn(3, 'backbone.stem.2.conv2'),
    *_backbone_stage(1, 5, 2), *_backbone_stage(2, 18, 8), *_backbone_stage(3, 49, 8), *_backbone_stage(4, 80, 4),
    _conv_bn(99, 'neck.spp_csp.short_conv'),
    *(_conv_bn(101 + i, f'neck.spp_csp.pre_convs.{i}') for i in range(3)),  # then maxpools 5, 9, 13 and concat
    *(_conv_bn(110 + i, f'neck.spp_csp.post_convs.{i}') for i in range(2)),
    _conv_bn(113, 'neck.spp_csp.final_conv'),
    # top-down: reduce, [upsample, route], lateral, [concat], CSP
    _conv_bn(114, 'neck.reduce_convs.0'), _conv_bn(117, 'neck.lateral_convs.0'),
    *_neck_csp(119, 'neck.top_down_blocks.0'),
    _conv_bn(128, 'neck.reduce_convs.1'), _conv_bn(131, 'neck.lateral_convs.1'),
    *_neck_csp(133, 'neck.top_down_blocks.1'),
    *_head_level(0, 142),
    # bottom-up: [route], stride-2 conv, [concat], CSP, then the level's head
    _conv_bn(146, 'neck.downsample_convs.0'), *_neck_csp(148, 'neck.bottom_up_blocks.0'), *_head_level(1, 157),
    _conv_bn(161, 'neck.downsample_convs.1'), *_neck_csp(163, 'neck.bottom_up_blocks.1'), *_head_level(2, 172),
])

# Versions darknet has written: 0.1.x with a 32-bit ``seen``, 0.2.x with a 64-bit one.
KNOWN_MAJOR_MINOR = ((0, 1), (0, 2))
FLOAT_BYTES = 4


class DarknetWeightsError(ValueError):
    """The darknet file cannot be converted for this config; the message says which file and why."""


class DarknetHeader(NamedTuple):
    major: int
    minor: int
    revision: int
    seen: int
    size: int  # bytes

    @property
    def version(self) -> str:
        return f'{self.major}.{self.minor}.{self.revision}'


class ConvArrays(NamedTuple):
    """One cfg conv: its state-dict keys and shapes in the order of the weights file."""
    cfg_index: int
    entries: Tuple[Tuple[str, torch.Size], ...]

    @property
    def num_floats(self) -> int:
        return sum(math.prod(shape) for _, shape in self.entries)


def read_header(f: BinaryIO, path: str) -> DarknetHeader:
    """The header at the start of ``f``, or :class:`DarknetWeightsError` for an unknown one."""
    head = f.read(12)
    if head.startswith(b'PK\x03\x04'):
        raise DarknetWeightsError(f'{path} is a PyTorch checkpoint, not a darknet .weights file: '
                                  'give it to the tools as CHECKPOINT directly')
    if len(head) < 12:
        raise DarknetWeightsError(f'{path} is not a darknet .weights file: {len(head)} bytes, '
                                  'shorter than a header')
    major, minor, revision = (int(v) for v in np.frombuffer(head, dtype='<i4'))
    if (major, minor) not in KNOWN_MAJOR_MINOR:
        raise DarknetWeightsError(
            f'{path}: unknown darknet header version {major}.{minor}.{revision} (darknet writes 0.2.x, '
            'older files 0.1.x); is it a darknet .weights file?')
    seen_dtype = np.dtype('<u8' if major * 10 + minor >= 2 else '<u4')
    seen_bytes = f.read(seen_dtype.itemsize)
    if len(seen_bytes) < seen_dtype.itemsize:
        raise DarknetWeightsError(f'{path} ends inside its darknet header')
    seen = int(np.frombuffer(seen_bytes, dtype=seen_dtype)[0])
    return DarknetHeader(major, minor, revision, seen, 12 + seen_dtype.itemsize)


def model_shapes(cfg: Config) -> 'OrderedDict[str, torch.Size]':
    """The state-dict shapes of the config's detector, built on the meta device (no weights allocated)."""
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    with torch.device('meta'):
        model = MODELS.build(cfg.model)
    return OrderedDict((key, value.shape) for key, value in model.state_dict().items())


def conv_layout(shapes: Dict[str, torch.Size]) -> List[ConvArrays]:
    """The file's arrays for the model with these state-dict shapes, conv by conv in cfg order.

    Raises :class:`DarknetWeightsError` if the model is not YOLOv4-CSP (a module is missing).
    """
    layout = []
    for cfg_index, conv, norm in DARKNET_CONVS:
        keys = ([f'{norm}.bias', f'{norm}.weight', f'{norm}.running_mean', f'{norm}.running_var']
                if norm is not None else [f'{conv}.bias'])
        keys.append(f'{conv}.weight')
        missing = [key for key in keys if key not in shapes]
        if missing:
            raise DarknetWeightsError(f'the config does not build YOLOv4-CSP: it has no {missing[0]} '
                                      f'(the cfg layer {cfg_index}); use configs/yolov4_csp_coco.py or a variant')
        layout.append(ConvArrays(cfg_index, tuple((key, shapes[key]) for key in keys)))
    return layout


def _floats_per_class(layout: Sequence[ConvArrays]) -> int:
    """Floats one more class adds to the file: 3 anchors x (weights + bias) of each head conv."""
    head_weights = [entries[-1][1] for _, entries in layout if len(entries) == 2]
    return sum(3 * (math.prod(shape[1:]) + 1) for shape in head_weights)


def _other_class_count(layout: Sequence[ConvArrays], found: int, expected: int) -> str:
    head_out = [entries[-1][1][0] for _, entries in layout if len(entries) == 2]
    num_classes = head_out[0] // 3 - 5
    per_class, difference = _floats_per_class(layout), found - expected
    if difference % per_class or num_classes + difference // per_class < 1:
        return ''
    return (f'; its size fits the same network with {num_classes + difference // per_class} classes '
            f'(the config has {num_classes}): convert it with a config of that many classes')


def check_size(path: str, header: DarknetHeader, file_size: int, layout: Sequence[ConvArrays]) -> None:
    """Refuse, before reading the body, a file that does not hold exactly the layout's floats."""
    body = file_size - header.size
    expected = sum(conv.num_floats for conv in layout)
    what = f'{path} (darknet {header.version}, {header.size}-byte header)'
    if body % FLOAT_BYTES:
        raise DarknetWeightsError(f'{what}: its body of {body} bytes is not a whole number of float32 '
                                  f'(the config expects {expected} floats); the file is damaged')
    found = body // FLOAT_BYTES
    if found < expected:
        consumed = 0
        for position, conv in enumerate(layout):
            consumed += conv.num_floats
            if consumed > found:
                break
        raise DarknetWeightsError(
            f'{what} holds {found} floats, the config expects {expected}: it is truncated, it runs out in '
            f'cfg layer {conv.cfg_index} (conv {position + 1} of {len(layout)}, {conv.entries[-1][0]})'
            + _other_class_count(layout, found, expected))
    if found > expected:
        raise DarknetWeightsError(
            f'{what} holds {found} floats, the config expects {expected}: {found - expected} floats follow the '
            f'last conv (cfg layer {layout[-1].cfg_index}); it is the weights of another network or cfg'
            + _other_class_count(layout, found, expected))


def read_darknet_weights(path: str,
                         layout: Sequence[ConvArrays]) -> Tuple['OrderedDict[str, torch.Tensor]', DarknetHeader]:
    """The layout's tensors read from ``path``, each its own float32 storage (no other copy is held)."""
    with open(path, 'rb') as f:
        header = read_header(f, path)
        check_size(path, header, os.fstat(f.fileno()).st_size, layout)
        tensors = OrderedDict()
        for conv in layout:
            for key, shape in conv.entries:
                values = np.fromfile(f, dtype='<f4', count=math.prod(shape))
                if values.size != math.prod(shape):  # the file changed under us since check_size
                    raise DarknetWeightsError(f'{path} ended while reading {key} (cfg layer {conv.cfg_index})')
                bad = int(np.count_nonzero(~np.isfinite(values)))
                if bad:  # a damaged or diverged file: converted, it would give NaN detections without a word
                    raise DarknetWeightsError(f'{path}: {bad} of the {values.size} values of {key} (cfg layer '
                                              f'{conv.cfg_index}) are NaN or infinite; the file is damaged or its '
                                              'training diverged: use an intact copy')
                tensors[key] = torch.from_numpy(values.astype(np.float32, copy=False)).view(shape)
    return tensors, header


def convert_darknet(cfg: Config, path: str) -> Tuple['OrderedDict[str, torch.Tensor]', DarknetHeader]:
    """The config's state dict with every conv and BN from the darknet file ``path``.

    BN ``num_batches_tracked`` counters (not in darknet's format) are 0. Every other entry of the
    model must come from the file, otherwise the mapping is incomplete (a bug: RuntimeError).
    """
    shapes = model_shapes(cfg)
    layout = conv_layout(shapes)
    if not osp.isfile(path):
        raise DarknetWeightsError(f'darknet weights file {path} does not exist')
    tensors, header = read_darknet_weights(path, layout)
    state_dict = OrderedDict()
    for key, shape in shapes.items():
        if key in tensors:
            state_dict[key] = tensors.pop(key)
        elif key.endswith('.num_batches_tracked'):
            state_dict[key] = torch.tensor(0, dtype=torch.long)
        else:
            raise RuntimeError(f'DARKNET_CONVS gives no source for {key} {tuple(shape)}')
    return state_dict, header


def write_darknet_weights(f: BinaryIO, state_dict: Dict[str, torch.Tensor], layout: Sequence[ConvArrays],
                          version: Tuple[int, int, int] = (0, 2, 5), seen: int = 0) -> None:
    """Write the layout's tensors of ``state_dict`` as a darknet ``.weights`` file (the inverse of
    :func:`read_darknet_weights`)."""
    major, minor, revision = version
    f.write(np.array([major, minor, revision], dtype='<i4').tobytes())
    f.write(np.array([seen], dtype='<u8' if major * 10 + minor >= 2 else '<u4').tobytes())
    for conv in layout:
        for key, _ in conv.entries:
            f.write(state_dict[key].detach().cpu().numpy().astype('<f4').tobytes())
