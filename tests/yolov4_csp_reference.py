"""An independent YOLOv4-CSP: darknet's ``cfg/yolov4-csp.cfg`` as data, its ``.weights`` format and its forward.

Written from the cfg's layer table and the weights format (no parnet_det import), so that the
darknet converter and the project's detector are checked against the network the published
weights were trained as, not against themselves:

- :data:`LAYER_TABLE`: the 175 layers after ``[net]`` (index, type, arguments, output at 640x640).
  conv: filters size stride bn|bias activation; shortcut: previous + ``from`` (absolute indices);
  route: concatenated layers in order; maxpool: size stride; upsample: factor; yolo: anchor mask.
- :func:`random_darknet_arrays` / :func:`write_darknet_weights`: a ``.weights`` file (header
  major, minor, revision, then ``seen`` as uint64 from version 0.2 on, uint32 before; then per
  conv in cfg order: BN beta, gamma, running mean, running variance, weights OIHW, or bias and
  weights for the three head convs; float32 little-endian).
- :func:`functional_forward` and :func:`official_decode`: the network in plain torch ops and the
  official decode to ``[B, N, 5 + C]`` (cx, cy, w, h in input pixels, objectness, class
  probabilities; N ordered by level, anchor, y, x), as the PyTorch port evaluates before NMS.
"""
import math
from typing import List, NamedTuple, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F

LAYER_TABLE = """
  0 conv 32 3 1 bn mish            32x640x640
  1 conv 64 3 2 bn mish            64x320x320
  2 conv 32 1 1 bn mish            32x320x320
  3 conv 64 3 1 bn mish            64x320x320
  4 shortcut 3 1                   64x320x320
  5 conv 128 3 2 bn mish           128x160x160
  6 conv 64 1 1 bn mish            64x160x160
  7 route 5                        128x160x160
  8 conv 64 1 1 bn mish            64x160x160
  9 conv 64 1 1 bn mish            64x160x160
 10 conv 64 3 1 bn mish            64x160x160
 11 shortcut 10 8                  64x160x160
 12 conv 64 1 1 bn mish            64x160x160
 13 conv 64 3 1 bn mish            64x160x160
 14 shortcut 13 11                 64x160x160
 15 conv 64 1 1 bn mish            64x160x160
 16 route 15 6                     128x160x160
 17 conv 128 1 1 bn mish           128x160x160
 18 conv 256 3 2 bn mish           256x80x80
 19 conv 128 1 1 bn mish           128x80x80
 20 route 18                       256x80x80
 21 conv 128 1 1 bn mish           128x80x80
 22 conv 128 1 1 bn mish           128x80x80
 23 conv 128 3 1 bn mish           128x80x80
 24 shortcut 23 21                 128x80x80
 25 conv 128 1 1 bn mish           128x80x80
 26 conv 128 3 1 bn mish           128x80x80
 27 shortcut 26 24                 128x80x80
 28 conv 128 1 1 bn mish           128x80x80
 29 conv 128 3 1 bn mish           128x80x80
 30 shortcut 29 27                 128x80x80
 31 conv 128 1 1 bn mish           128x80x80
 32 conv 128 3 1 bn mish           128x80x80
 33 shortcut 32 30                 128x80x80
 34 conv 128 1 1 bn mish           128x80x80
 35 conv 128 3 1 bn mish           128x80x80
 36 shortcut 35 33                 128x80x80
 37 conv 128 1 1 bn mish           128x80x80
 38 conv 128 3 1 bn mish           128x80x80
 39 shortcut 38 36                 128x80x80
 40 conv 128 1 1 bn mish           128x80x80
 41 conv 128 3 1 bn mish           128x80x80
 42 shortcut 41 39                 128x80x80
 43 conv 128 1 1 bn mish           128x80x80
 44 conv 128 3 1 bn mish           128x80x80
 45 shortcut 44 42                 128x80x80
 46 conv 128 1 1 bn mish           128x80x80
 47 route 46 19                    256x80x80
 48 conv 256 1 1 bn mish           256x80x80
 49 conv 512 3 2 bn mish           512x40x40
 50 conv 256 1 1 bn mish           256x40x40
 51 route 49                       512x40x40
 52 conv 256 1 1 bn mish           256x40x40
 53 conv 256 1 1 bn mish           256x40x40
 54 conv 256 3 1 bn mish           256x40x40
 55 shortcut 54 52                 256x40x40
 56 conv 256 1 1 bn mish           256x40x40
 57 conv 256 3 1 bn mish           256x40x40
 58 shortcut 57 55                 256x40x40
 59 conv 256 1 1 bn mish           256x40x40
 60 conv 256 3 1 bn mish           256x40x40
 61 shortcut 60 58                 256x40x40
 62 conv 256 1 1 bn mish           256x40x40
 63 conv 256 3 1 bn mish           256x40x40
 64 shortcut 63 61                 256x40x40
 65 conv 256 1 1 bn mish           256x40x40
 66 conv 256 3 1 bn mish           256x40x40
 67 shortcut 66 64                 256x40x40
 68 conv 256 1 1 bn mish           256x40x40
 69 conv 256 3 1 bn mish           256x40x40
 70 shortcut 69 67                 256x40x40
 71 conv 256 1 1 bn mish           256x40x40
 72 conv 256 3 1 bn mish           256x40x40
 73 shortcut 72 70                 256x40x40
 74 conv 256 1 1 bn mish           256x40x40
 75 conv 256 3 1 bn mish           256x40x40
 76 shortcut 75 73                 256x40x40
 77 conv 256 1 1 bn mish           256x40x40
 78 route 77 50                    512x40x40
 79 conv 512 1 1 bn mish           512x40x40
 80 conv 1024 3 2 bn mish          1024x20x20
 81 conv 512 1 1 bn mish           512x20x20
 82 route 80                       1024x20x20
 83 conv 512 1 1 bn mish           512x20x20
 84 conv 512 1 1 bn mish           512x20x20
 85 conv 512 3 1 bn mish           512x20x20
 86 shortcut 85 83                 512x20x20
 87 conv 512 1 1 bn mish           512x20x20
 88 conv 512 3 1 bn mish           512x20x20
 89 shortcut 88 86                 512x20x20
 90 conv 512 1 1 bn mish           512x20x20
 91 conv 512 3 1 bn mish           512x20x20
 92 shortcut 91 89                 512x20x20
 93 conv 512 1 1 bn mish           512x20x20
 94 conv 512 3 1 bn mish           512x20x20
 95 shortcut 94 92                 512x20x20
 96 conv 512 1 1 bn mish           512x20x20
 97 route 96 81                    1024x20x20
 98 conv 1024 1 1 bn mish          1024x20x20
 99 conv 512 1 1 bn mish           512x20x20
100 route 98                       1024x20x20
101 conv 512 1 1 bn mish           512x20x20
102 conv 512 3 1 bn mish           512x20x20
103 conv 512 1 1 bn mish           512x20x20
104 maxpool 5 1                    512x20x20
105 route 103                      512x20x20
106 maxpool 9 1                    512x20x20
107 route 103                      512x20x20
108 maxpool 13 1                   512x20x20
109 route 108 106 104 103          2048x20x20
110 conv 512 1 1 bn mish           512x20x20
111 conv 512 3 1 bn mish           512x20x20
112 route 111 99                   1024x20x20
113 conv 512 1 1 bn mish           512x20x20
114 conv 256 1 1 bn mish           256x20x20
115 upsample 2                     256x40x40
116 route 79                       512x40x40
117 conv 256 1 1 bn mish           256x40x40
118 route 117 115                  512x40x40
119 conv 256 1 1 bn mish           256x40x40
120 conv 256 1 1 bn mish           256x40x40
121 route 119                      256x40x40
122 conv 256 1 1 bn mish           256x40x40
123 conv 256 3 1 bn mish           256x40x40
124 conv 256 1 1 bn mish           256x40x40
125 conv 256 3 1 bn mish           256x40x40
126 route 125 120                  512x40x40
127 conv 256 1 1 bn mish           256x40x40
128 conv 128 1 1 bn mish           128x40x40
129 upsample 2                     128x80x80
130 route 48                       256x80x80
131 conv 128 1 1 bn mish           128x80x80
132 route 131 129                  256x80x80
133 conv 128 1 1 bn mish           128x80x80
134 conv 128 1 1 bn mish           128x80x80
135 route 133                      128x80x80
136 conv 128 1 1 bn mish           128x80x80
137 conv 128 3 1 bn mish           128x80x80
138 conv 128 1 1 bn mish           128x80x80
139 conv 128 3 1 bn mish           128x80x80
140 route 139 134                  256x80x80
141 conv 128 1 1 bn mish           128x80x80
142 conv 256 3 1 bn mish           256x80x80
143 conv 255 1 1 bias logistic     255x80x80
144 yolo 0,1,2                     255x80x80
145 route 141                      128x80x80
146 conv 256 3 2 bn mish           256x40x40
147 route 146 127                  512x40x40
148 conv 256 1 1 bn mish           256x40x40
149 conv 256 1 1 bn mish           256x40x40
150 route 148                      256x40x40
151 conv 256 1 1 bn mish           256x40x40
152 conv 256 3 1 bn mish           256x40x40
153 conv 256 1 1 bn mish           256x40x40
154 conv 256 3 1 bn mish           256x40x40
155 route 154 149                  512x40x40
156 conv 256 1 1 bn mish           256x40x40
157 conv 512 3 1 bn mish           512x40x40
158 conv 255 1 1 bias logistic     255x40x40
159 yolo 3,4,5                     255x40x40
160 route 156                      256x40x40
161 conv 512 3 2 bn mish           512x20x20
162 route 161 113                  1024x20x20
163 conv 512 1 1 bn mish           512x20x20
164 conv 512 1 1 bn mish           512x20x20
165 route 163                      512x20x20
166 conv 512 1 1 bn mish           512x20x20
167 conv 512 3 1 bn mish           512x20x20
168 conv 512 1 1 bn mish           512x20x20
169 conv 512 3 1 bn mish           512x20x20
170 route 169 164                  1024x20x20
171 conv 512 1 1 bn mish           512x20x20
172 conv 1024 3 1 bn mish          1024x20x20
173 conv 255 1 1 bias logistic     255x20x20
174 yolo 6,7,8                     255x20x20
"""

# Pixels (w, h); a yolo layer's mask picks its three.
ANCHORS = ((12, 16), (19, 36), (40, 28), (36, 75), (76, 55), (72, 146), (142, 110), (192, 243), (459, 401))
# The PyTorch port's strides of the three yolo layers, in cfg order.
YOLO_STRIDES = (8, 16, 32)


class Layer(NamedTuple):
    index: int
    kind: str
    args: Tuple[str, ...]
    out_channels_at_640: int
    out_size_at_640: int


def parse_layers(num_classes: int = 80) -> List[Layer]:
    """The layer table; the head convs get 3 x (5 + ``num_classes``) filters (255 for COCO)."""
    layers = []
    for line in LAYER_TABLE.strip().splitlines():
        index, kind, *args, out = line.split()
        channels, height, _ = (int(v) for v in out.split('x'))
        if kind == 'conv' and args[3] == 'bias':
            args[0] = str(3 * (5 + num_classes))
            channels = int(args[0])
        assert int(index) == len(layers), f'layer table out of order at {index}'
        layers.append(Layer(int(index), kind, tuple(args), channels, height))
    return layers


class ConvSpec(NamedTuple):
    index: int
    filters: int
    in_channels: int
    size: int
    stride: int
    batch_norm: bool
    activation: str


def conv_specs(layers: Sequence[Layer], in_channels: int = 3) -> List[ConvSpec]:
    """Every conv in cfg order with its input channels, found by following the table's refs."""
    channels, specs = [], []
    for layer in layers:
        previous = channels[-1] if channels else in_channels
        if layer.kind == 'conv':
            filters, size, stride, norm, act = layer.args
            specs.append(ConvSpec(layer.index, int(filters), previous, int(size), int(stride), norm == 'bn', act))
            channels.append(int(filters))
        elif layer.kind == 'route':
            channels.append(sum(channels[int(ref)] for ref in layer.args))
        else:  # shortcut, maxpool, upsample, yolo keep the channels
            channels.append(previous)
    return specs


def conv_arrays_order(spec: ConvSpec) -> List[Tuple[str, Tuple[int, ...]]]:
    """Names and shapes of one conv's arrays, in the order of the weights file."""
    n = spec.filters
    head = [('beta', (n,)), ('gamma', (n,)), ('mean', (n,)), ('var', (n,))] if spec.batch_norm else [('bias', (n,))]
    return head + [('weight', (n, spec.in_channels, spec.size, spec.size))]


def random_darknet_arrays(specs: Sequence[ConvSpec], seed: int = 0) -> List[dict]:
    """Random float32 arrays for every conv; non-trivial BN (positive variances away from 1), weights
    scaled so that activations stay of order one through the 115 convs."""
    rng = np.random.default_rng(seed)
    arrays = []
    for spec in specs:
        n = spec.filters
        fan_in = spec.in_channels * spec.size * spec.size
        values = dict(weight=rng.standard_normal((n, spec.in_channels, spec.size, spec.size)) / math.sqrt(fan_in))
        if spec.batch_norm:
            values.update(beta=rng.normal(0, 0.2, n), gamma=rng.uniform(0.5, 1.5, n),
                          mean=rng.normal(0, 0.2, n), var=rng.uniform(0.3, 2.0, n))
        else:
            values.update(bias=rng.normal(0, 1.0, n))
        arrays.append({k: v.astype(np.float32) for k, v in values.items()})
    return arrays


def write_darknet_weights(f, specs: Sequence[ConvSpec], arrays: Sequence[dict],
                          version: Tuple[int, int, int] = (0, 2, 5), seen: int = 32013312) -> None:
    """Write a darknet ``.weights`` file to the binary file object ``f``."""
    major, minor, revision = version
    f.write(np.array([major, minor, revision], dtype='<i4').tobytes())
    f.write(np.array([seen], dtype='<u8' if major * 10 + minor >= 2 else '<u4').tobytes())
    for spec, values in zip(specs, arrays):
        for name, shape in conv_arrays_order(spec):
            assert values[name].shape == shape, (spec.index, name, values[name].shape, shape)
            f.write(np.ascontiguousarray(values[name], dtype='<f4').tobytes())


def _mish(x: torch.Tensor) -> torch.Tensor:
    return x * torch.tanh(F.softplus(x))


_ACTIVATIONS = dict(mish=_mish, logistic=torch.sigmoid, linear=lambda x: x)


def _conv(spec: ConvSpec, values: dict, x: torch.Tensor, eps: float) -> torch.Tensor:
    t = {k: torch.from_numpy(v) for k, v in values.items()}
    y = F.conv2d(x, t['weight'], t.get('bias'), spec.stride, spec.size // 2)
    if spec.batch_norm:
        def per_channel(v):
            return v.view(1, -1, 1, 1)
        y = (y - per_channel(t['mean'])) / torch.sqrt(per_channel(t['var']) + eps) * per_channel(t['gamma']) \
            + per_channel(t['beta'])
    return _ACTIVATIONS[spec.activation](y)


@torch.no_grad()
def functional_forward(layers: Sequence[Layer], arrays: Sequence[dict], x: torch.Tensor,
                       eps: float) -> List[torch.Tensor]:
    """The outputs of the three yolo layers (the head convs after their logistic activation),
    with BN as (x - mean) / sqrt(var + ``eps``) * gamma + beta."""
    specs = {spec.index: (spec, values) for spec, values in zip(conv_specs(layers, x.shape[1]), arrays)}
    outputs, yolo_outputs = [], []
    for layer in layers:
        previous = outputs[-1] if outputs else x
        if layer.kind == 'conv':
            out = _conv(*specs[layer.index], previous, eps)
        elif layer.kind == 'shortcut':
            out = outputs[int(layer.args[0])] + outputs[int(layer.args[1])]
        elif layer.kind == 'route':
            out = torch.cat([outputs[int(ref)] for ref in layer.args], dim=1)
        elif layer.kind == 'maxpool':
            size, stride = int(layer.args[0]), int(layer.args[1])
            out = F.max_pool2d(previous, size, stride, (size - 1) // 2)
        elif layer.kind == 'upsample':
            out = F.interpolate(previous, scale_factor=int(layer.args[0]), mode='nearest')
        elif layer.kind == 'yolo':
            out = previous
            yolo_outputs.append(out)
        else:
            raise ValueError(f'unknown layer type {layer.kind}')
        outputs.append(out)
    return yolo_outputs


def official_decode(layers: Sequence[Layer], yolo_outputs: Sequence[torch.Tensor]) -> torch.Tensor:
    """[B, N, 5 + C] from the yolo layers' (already sigmoid) maps: s = the map; cx = (2 s - 0.5 + grid_x)
    * stride, cy likewise; w = (2 s)^2 * anchor_w, h likewise; objectness and class probabilities s."""
    masks = [[int(a) for a in layer.args[0].split(',')] for layer in layers if layer.kind == 'yolo']
    decoded = []
    for s, mask, stride in zip(yolo_outputs, masks, YOLO_STRIDES):
        b, _, ny, nx = s.shape
        s = s.view(b, len(mask), -1, ny, nx).permute(0, 1, 3, 4, 2)  # [B, anchor, y, x, 5 + C]
        grid_y, grid_x = torch.meshgrid(torch.arange(ny, dtype=s.dtype), torch.arange(nx, dtype=s.dtype),
                                        indexing='ij')
        anchors = torch.tensor([ANCHORS[m] for m in mask], dtype=s.dtype).view(1, -1, 1, 1, 2)
        cx = (2 * s[..., 0] - 0.5 + grid_x) * stride
        cy = (2 * s[..., 1] - 0.5 + grid_y) * stride
        wh = (2 * s[..., 2:4]) ** 2 * anchors
        decoded.append(torch.cat([cx[..., None], cy[..., None], wh, s[..., 4:]], dim=-1).reshape(b, -1, s.shape[-1]))
    return torch.cat(decoded, dim=1)
