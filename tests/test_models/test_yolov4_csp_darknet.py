"""darknet's yolov4-csp.weights through the converter: the detector reproduces the official network.

The reference (tests/yolov4_csp_reference.py) is written from the cfg's layer table and the weights
format, with no project code: its writer makes the darknet file, its functional forward and decode
give the official predictions before NMS.
"""
import collections
import math

import pytest
import torch

from parnet_det.apis import build_detector, load_config
from parnet_det.convert.darknet_yolov4_csp import (
    DARKNET_CONVS,
    conv_layout,
    convert_darknet,
    model_shapes,
    write_darknet_weights,
)

from ..helpers import randomize_norm_stats, relative_error
from ..yolov4_csp_reference import (
    conv_arrays_order,
    conv_specs,
    functional_forward,
    official_decode,
    parse_layers,
    random_darknet_arrays,
)
from ..yolov4_csp_reference import write_darknet_weights as reference_write

CONFIG = 'configs/yolov4_csp_coco.py'
# The published file: 115 convs, 52,986,205 floats after a 20-byte header = 211,944,840 bytes.
OFFICIAL_FLOATS = 52_986_205


def test_reference_layer_table_is_the_cfg():
    layers = parse_layers()
    assert collections.Counter(layer.kind for layer in layers) == dict(
        conv=115, shortcut=23, route=29, maxpool=3, upsample=2, yolo=3)
    specs = conv_specs(layers)
    assert sum(spec.batch_norm for spec in specs) == 112
    assert sum(math.prod(shape) for spec in specs for _, shape in conv_arrays_order(spec)) == OFFICIAL_FLOATS
    # Channels and sizes followed through the refs agree with the table's output column (640x640 input).
    channels, sizes = [], []
    for layer in layers:
        previous_c, previous_s = (channels[-1], sizes[-1]) if channels else (3, 640)
        if layer.kind == 'route':
            c, s = sum(channels[int(r)] for r in layer.args), sizes[int(layer.args[0])]
        elif layer.kind == 'conv':
            c, s = int(layer.args[0]), previous_s // int(layer.args[2])
        elif layer.kind == 'upsample':
            c, s = previous_c, previous_s * int(layer.args[0])
        else:
            c, s = previous_c, previous_s
        channels.append(c)
        sizes.append(s)
        assert (c, s) == (layer.out_channels_at_640, layer.out_size_at_640), layer


def test_mapping_covers_every_conv_of_the_cfg_in_order():
    specs = conv_specs(parse_layers())
    assert [index for index, _, _ in DARKNET_CONVS] == [spec.index for spec in specs]
    assert [norm is None for _, _, norm in DARKNET_CONVS] == [not spec.batch_norm for spec in specs]


@pytest.fixture(scope='module')
def official_file(tmp_path_factory):
    """A random full-size yolov4-csp.weights (80 classes) written by the reference, and its arrays."""
    layers = parse_layers()
    specs = conv_specs(layers)
    arrays = random_darknet_arrays(specs, seed=0)
    path = tmp_path_factory.mktemp('darknet') / 'yolov4-csp.weights'
    with open(path, 'wb') as f:
        reference_write(f, specs, arrays)
    return dict(path=str(path), layers=layers, arrays=arrays)


def test_converted_weights_reproduce_the_official_network(official_file, tmp_path):
    cfg = load_config(CONFIG)
    state_dict, header = convert_darknet(cfg, official_file['path'])
    assert header.version == '0.2.5' and header.size == 20
    checkpoint = str(tmp_path / 'yolov4_csp.pth')
    torch.save(dict(state_dict=state_dict), checkpoint)
    model = build_detector(CONFIG, checkpoint)  # strict
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert len(norms) == 112 and {m.eps for m in norms} == {1e-4}

    x = torch.rand(2, 3, 256, 320, generator=torch.Generator().manual_seed(0))  # not square
    with torch.no_grad():
        decoded = model.bbox_head.decode(model.bbox_head(model.neck(model.backbone(x)))[0])
    expected = official_decode(official_file['layers'],
                               functional_forward(official_file['layers'], official_file['arrays'], x, eps=1e-4))
    assert decoded.shape == expected.shape == (2, 3 * (32 * 40 + 16 * 20 + 8 * 10), 85)
    for name, part in dict(centres=slice(0, 2), sizes=slice(2, 4), objectness=slice(4, 5),
                           classes=slice(5, None)).items():
        assert relative_error(decoded[..., part], expected[..., part]) <= 1e-5, name
    # The comparison can fail: darknet's own BN eps (1e-5) moves the outputs by far more than the tolerance.
    darknet_eps = official_decode(official_file['layers'],
                                  functional_forward(official_file['layers'], official_file['arrays'], x, eps=1e-5))
    assert relative_error(darknet_eps[..., :4], expected[..., :4]) > 1e-5


def test_round_trip_model_to_darknet_and_back(tmp_path):
    """A tiny-width variant: model -> darknet file -> converter gives the identical state dict."""
    cfg = load_config(CONFIG, {'model.backbone.widen_factor': 0.125, 'model.neck.in_channels': [32, 64, 128],
                               'model.neck.widen_factor': 0.125, 'model.bbox_head.widen_factor': 0.125})
    model = build_detector(cfg)
    randomize_norm_stats(model)
    path = str(tmp_path / 'tiny.weights')
    with open(path, 'wb') as f:
        write_darknet_weights(f, model.state_dict(), conv_layout(model_shapes(cfg)))
    converted, _ = convert_darknet(cfg, path)
    original = model.state_dict()
    assert sum(v.numel() for v in original.values()) < 2_000_000  # the narrow variant, not the full cfg
    assert list(converted) == list(original)
    assert all(torch.equal(converted[key], original[key]) for key in original)


def test_old_header_with_32_bit_seen_gives_the_same_weights(official_file, tmp_path):
    layers = official_file['layers']
    path = str(tmp_path / 'old.weights')
    with open(path, 'wb') as f:
        reference_write(f, conv_specs(layers), official_file['arrays'], version=(0, 1, 0), seen=1000)
    cfg = load_config(CONFIG)
    old, header = convert_darknet(cfg, path)
    assert (header.version, header.size, header.seen) == ('0.1.0', 16, 1000)
    new, _ = convert_darknet(cfg, official_file['path'])
    assert all(torch.equal(old[key], new[key]) for key in new)
