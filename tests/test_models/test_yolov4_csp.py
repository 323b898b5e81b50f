"""YOLOv4-CSP (configs/yolov4_csp_coco.py): the cfg's layer table, concat orders, official decode and test, folding."""
import math

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.config import Config, ConfigDict

from mmdet.registry import DATASETS, MODELS, TRANSFORMS

import parnet_det  # noqa: F401  (registers the modules)
from parnet_det.apis import set_test_resolution
from parnet_det.deploy import OnnxExportWrapper
from parnet_det.inference import DetectorEngine, postprocess_multilabel_detections
from parnet_det.models import build_detector, fold_conv_module_norms
from parnet_det.models.dense_heads import YOLOV4_CSP_TEST_CFG, YOLOv4CSPHead, boxes_to_image, select_detections
from parnet_det.models.utils import make_divisible

from ..helpers import REPO, randomize_norm_stats, relative_error

CONFIG = str(REPO / 'configs/yolov4_csp_coco.py')
# Every convolution of darknet's yolov4-csp.cfg (docs/reference/yolov4_csp.md §1),
# as cfg index : input channels : filters : size : stride : batch_normalize.
CFG_CONVS = """
    0:3:32:3:1:1 1:32:64:3:2:1 2:64:32:1:1:1 3:32:64:3:1:1 5:64:128:3:2:1 6:128:64:1:1:1
    8:128:64:1:1:1 9:64:64:1:1:1 10:64:64:3:1:1 12:64:64:1:1:1 13:64:64:3:1:1 15:64:64:1:1:1
    17:128:128:1:1:1 18:128:256:3:2:1 19:256:128:1:1:1 21:256:128:1:1:1 22:128:128:1:1:1 23:128:128:3:1:1
    25:128:128:1:1:1 26:128:128:3:1:1 28:128:128:1:1:1 29:128:128:3:1:1 31:128:128:1:1:1 32:128:128:3:1:1
    34:128:128:1:1:1 35:128:128:3:1:1 37:128:128:1:1:1 38:128:128:3:1:1 40:128:128:1:1:1 41:128:128:3:1:1
    43:128:128:1:1:1 44:128:128:3:1:1 46:128:128:1:1:1 48:256:256:1:1:1 49:256:512:3:2:1 50:512:256:1:1:1
    52:512:256:1:1:1 53:256:256:1:1:1 54:256:256:3:1:1 56:256:256:1:1:1 57:256:256:3:1:1 59:256:256:1:1:1
    60:256:256:3:1:1 62:256:256:1:1:1 63:256:256:3:1:1 65:256:256:1:1:1 66:256:256:3:1:1 68:256:256:1:1:1
    69:256:256:3:1:1 71:256:256:1:1:1 72:256:256:3:1:1 74:256:256:1:1:1 75:256:256:3:1:1 77:256:256:1:1:1
    79:512:512:1:1:1 80:512:1024:3:2:1 81:1024:512:1:1:1 83:1024:512:1:1:1 84:512:512:1:1:1 85:512:512:3:1:1
    87:512:512:1:1:1 88:512:512:3:1:1 90:512:512:1:1:1 91:512:512:3:1:1 93:512:512:1:1:1 94:512:512:3:1:1
    96:512:512:1:1:1 98:1024:1024:1:1:1 99:1024:512:1:1:1 101:1024:512:1:1:1 102:512:512:3:1:1 103:512:512:1:1:1
    110:2048:512:1:1:1 111:512:512:3:1:1 113:1024:512:1:1:1 114:512:256:1:1:1 117:512:256:1:1:1 119:512:256:1:1:1
    120:256:256:1:1:1 122:256:256:1:1:1 123:256:256:3:1:1 124:256:256:1:1:1 125:256:256:3:1:1 127:512:256:1:1:1
    128:256:128:1:1:1 131:256:128:1:1:1 133:256:128:1:1:1 134:128:128:1:1:1 136:128:128:1:1:1 137:128:128:3:1:1
    138:128:128:1:1:1 139:128:128:3:1:1 141:256:128:1:1:1 142:128:256:3:1:1 143:256:255:1:1:0 146:128:256:3:2:1
    148:512:256:1:1:1 149:256:256:1:1:1 151:256:256:1:1:1 152:256:256:3:1:1 153:256:256:1:1:1 154:256:256:3:1:1
    156:512:256:1:1:1 157:256:512:3:1:1 158:512:255:1:1:0 161:256:512:3:2:1 163:1024:512:1:1:1 164:512:512:1:1:1
    166:512:512:1:1:1 167:512:512:3:1:1 168:512:512:1:1:1 169:512:512:3:1:1 171:1024:512:1:1:1 172:512:1024:3:1:1
    173:1024:255:1:1:0
"""
# The weights file's float count for 80 classes (docs/reference/yolov4_csp.md §0): conv weights + 4 per BN channel
# or 1 per bias.
CFG_FLOATS = 52_986_205
ANCHORS = [[(12, 16), (19, 36), (40, 28)], [(36, 75), (76, 55), (72, 146)], [(142, 110), (192, 243), (459, 401)]]
OFFICIAL_TEST_CFG = dict(conf_thr=0.001, score_thr=0.001, nms=dict(type='nms', iou_threshold=0.65), max_per_img=300)


def cfg_convs():
    return [tuple(int(v) for v in entry.split(':')) for entry in CFG_CONVS.split()]


def conv_paths():
    """The module of each cfg conv, in cfg order: the mapping published for the converter."""
    paths = ['backbone.stem.0', 'backbone.stem.1', 'backbone.stem.2.conv1', 'backbone.stem.2.conv2']
    for stage, num_blocks in enumerate((2, 8, 8, 4), 1):
        prefix = f'backbone.stage{stage}'
        paths += [f'{prefix}.0', f'{prefix}.1.short_conv', f'{prefix}.1.main_conv']
        paths += [f'{prefix}.1.blocks.{i}.conv{k}' for i in range(num_blocks) for k in (1, 2)]
        paths += [f'{prefix}.1.transition_conv', f'{prefix}.1.final_conv']
    paths += ['neck.spp_csp.short_conv', *(f'neck.spp_csp.pre_convs.{i}' for i in range(3)),
              *(f'neck.spp_csp.post_convs.{i}' for i in range(2)), 'neck.spp_csp.final_conv']

    def block(prefix):
        return [f'{prefix}.in_conv', f'{prefix}.csp.short_conv',
                *(f'{prefix}.csp.blocks.{i}.conv{k}' for i in range(2) for k in (1, 2)), f'{prefix}.csp.final_conv']

    for i in range(2):
        paths += [f'neck.reduce_convs.{i}', f'neck.lateral_convs.{i}', *block(f'neck.top_down_blocks.{i}')]
    paths += ['bbox_head.convs_bridge.0', 'bbox_head.convs_pred.0']
    for i in range(2):
        paths += [f'neck.downsample_convs.{i}', *block(f'neck.bottom_up_blocks.{i}'),
                  f'bbox_head.convs_bridge.{i + 1}', f'bbox_head.convs_pred.{i + 1}']
    return paths


def tiny_detector(num_classes=5, widen_factor=0.125):
    """The config's detector, narrow (full depth: every cfg conv is there), in eval mode."""
    return build_detector(CONFIG, cfg_options={
        'model.backbone.widen_factor': widen_factor, 'model.neck.widen_factor': widen_factor,
        'model.neck.in_channels': [make_divisible(c * widen_factor) for c in (256, 512, 1024)],
        'model.bbox_head.widen_factor': widen_factor, 'model.bbox_head.num_classes': num_classes})


@pytest.fixture(scope='module')
def full_detector():
    return build_detector(CONFIG)


def test_detector_is_the_cfg_layer_table_one_for_one(full_detector):
    modules = dict(full_detector.named_modules())
    mapped = set()
    floats = 0
    for (index, in_channels, filters, size, stride, with_bn), path in zip(cfg_convs(), conv_paths(), strict=True):
        module = modules[path]
        conv = module.conv if with_bn else module
        assert (conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding, conv.groups) == (
            in_channels, filters, (size, size), (stride, stride), (size // 2, size // 2), 1), (index, path)
        if with_bn:
            assert conv.bias is None and isinstance(module.activate, nn.Mish), (index, path)
            assert (module.bn.num_features, module.bn.eps, module.bn.momentum) == (filters, 1e-4, 0.03)
            floats += conv.weight.numel() + 4 * filters
            mapped.update(f'{path}.{key}' for key in module.state_dict())
        else:
            assert conv.bias is not None and path.startswith('bbox_head.convs_pred'), (index, path)
            floats += conv.weight.numel() + conv.bias.numel()
            mapped.update(f'{path}.{key}' for key in ('weight', 'bias'))
    assert len(cfg_convs()) == 115 and sum(isinstance(m, nn.Conv2d) for m in full_detector.modules()) == 115
    assert floats == CFG_FLOATS
    # Nothing else holds state: the converted weights fill the whole model.
    assert set(full_detector.state_dict()) == mapped
    assert full_detector.bbox_head.prior_generator.base_sizes == ANCHORS
    assert full_detector.neck.out_channels == [128, 256, 512]


def _record(model, paths):
    """Forward hooks on ``paths``: what each module received (first input) and returned."""
    modules = dict(model.named_modules())
    seen = {}
    for path in paths:
        modules[path].register_forward_hook(
            lambda module, args, output, path=path: seen.__setitem__(path, (args[0], output)))
    return seen


def test_concatenations_and_routes_follow_the_cfg():
    torch.manual_seed(0)
    model = tiny_detector()
    blocks = [f'neck.{kind}_blocks.{i}' for kind in ('top_down', 'bottom_up') for i in range(2)]
    paths = [p for p in conv_paths()] + [f'backbone.stage{i}' for i in range(1, 5)] + [
        'neck.spp_csp', *(f'{b}.csp.blocks' for b in blocks), *blocks,
        *(f'backbone.stage{s}.1.blocks.0' for s in range(1, 5)), *(f'{b}.csp.blocks.0' for b in blocks)]
    seen = _record(model, paths)
    inp = lambda path: seen[path][0]  # noqa: E731
    out = lambda path: seen[path][1]  # noqa: E731
    with torch.no_grad():
        model.bbox_head(model.extract_feat(torch.randn(1, 3, 128, 192)))
    cat = lambda *tensors: torch.cat(tensors, dim=1)  # noqa: E731
    for stage in range(1, 5):  # CSP stages (e.g. 16 = route 15, 6): processed branch first, split second
        block = f'backbone.stage{stage}.1'
        assert torch.equal(inp(f'{block}.final_conv'), cat(out(f'{block}.transition_conv'), out(f'{block}.short_conv')))
        assert inp(f'{block}.short_conv') is inp(f'{block}.main_conv') is out(f'backbone.stage{stage}.0')
        unit = f'{block}.blocks.0'  # residual units: 1x1, 3x3, add (e.g. 11 = 10 + 8)
        assert torch.equal(out(unit), inp(unit) + out(f'{unit}.conv2'))
    spp = 'neck.spp_csp'  # 109 = route 108, 106, 104, 103 (max-pools 13, 9, 5 of 103, then 103)
    y = out(f'{spp}.pre_convs.2')
    pools = [F.max_pool2d(y, k, stride=1, padding=k // 2) for k in (13, 9, 5)]
    assert torch.equal(inp(f'{spp}.post_convs.0'), cat(*pools, y))
    assert torch.equal(inp(f'{spp}.final_conv'), cat(out(f'{spp}.post_convs.1'), out(f'{spp}.short_conv')))
    assert inp(spp) is out('backbone.stage4')
    # Top-down (118, 132): lateral 1x1 first, upsampled second; laterals on 79 and 48.
    up = lambda x: F.interpolate(x, scale_factor=2, mode='nearest')  # noqa: E731
    assert inp('neck.lateral_convs.0') is out('backbone.stage3')
    assert inp('neck.lateral_convs.1') is out('backbone.stage2')
    assert inp('neck.reduce_convs.0') is out(spp)
    assert inp('neck.reduce_convs.1') is out('neck.top_down_blocks.0')
    for i in range(2):
        assert torch.equal(inp(f'neck.top_down_blocks.{i}.in_conv'),
                           cat(out(f'neck.lateral_convs.{i}'), up(out(f'neck.reduce_convs.{i}'))))
    # Bottom-up (147, 162): stride-2 conv first, the top-down map (127, 113) second.
    assert inp('neck.downsample_convs.0') is out('neck.top_down_blocks.1')
    assert inp('neck.downsample_convs.1') is out('neck.bottom_up_blocks.0')
    for i, lateral in enumerate(('neck.top_down_blocks.0', spp)):
        assert torch.equal(inp(f'neck.bottom_up_blocks.{i}.in_conv'),
                           cat(out(f'neck.downsample_convs.{i}'), out(lateral)))
    for block in blocks:  # neck CSP (e.g. 120-127): split and bottlenecks from in_conv, no residual adds
        assert inp(f'{block}.csp.short_conv') is inp(f'{block}.csp.blocks') is out(f'{block}.in_conv')
        assert torch.equal(inp(f'{block}.csp.final_conv'),
                           cat(out(f'{block}.csp.blocks'), out(f'{block}.csp.short_conv')))
        assert out(f'{block}.csp.blocks.0') is out(f'{block}.csp.blocks.0.conv2')
    # Head: 142 on 141, 157 on 156, 172 on 171.
    for i, source in enumerate(('neck.top_down_blocks.1', 'neck.bottom_up_blocks.0', 'neck.bottom_up_blocks.1')):
        assert inp(f'bbox_head.convs_bridge.{i}') is out(source)


def logit(p):
    return math.log(p / (1 - p))


def quiet_maps(head, height, width, batch=1):
    """Prediction maps where every box has objectness sigmoid(-20) (below every threshold)."""
    maps = []
    for stride in head.strides:
        level = torch.zeros(batch, head.num_anchors, head.num_attrib, height // stride, width // stride)
        level[:, :, 4] = -20.0
        maps.append(level)
    return maps


def set_box(level, anchor, row, col, xy=(0.5, 0.5), wh=(0.5, 0.5), obj=0.9, probs=()):
    """Put sigmoid values into one (anchor, cell) of a [B, A, 5 + C, H, W] map (before flattening)."""
    values = [*xy, *wh, obj, *probs]
    level[:, anchor, :len(values), row, col] = torch.tensor([logit(v) for v in values])
    level[:, anchor, len(values):, row, col] = -20.0


def flat(maps):
    return [level.flatten(1, 2) for level in maps]


@pytest.fixture
def head():
    return YOLOv4CSPHead(num_classes=3, widen_factor=0.125)


def test_decode_is_the_official_formula(head):
    torch.manual_seed(0)
    height, width = 64, 96
    maps = [torch.randn(2, head.num_anchors * head.num_attrib, height // s, width // s) for s in head.strides]
    decoded = head.decode(maps)
    expected = []
    for level, stride, anchors in zip(maps, head.strides, ANCHORS):
        batch, _, rows, cols = level.shape
        s = level.view(batch, 3, head.num_attrib, rows, cols).sigmoid()
        grid_y, grid_x = torch.meshgrid(torch.arange(rows), torch.arange(cols), indexing='ij')
        anchor_w = torch.tensor([a[0] for a in anchors], dtype=torch.float32).view(1, 3, 1, 1)
        anchor_h = torch.tensor([a[1] for a in anchors], dtype=torch.float32).view(1, 3, 1, 1)
        cx = (2 * s[:, :, 0] - 0.5 + grid_x) * stride
        cy = (2 * s[:, :, 1] - 0.5 + grid_y) * stride
        w = (2 * s[:, :, 2])**2 * anchor_w
        h = (2 * s[:, :, 3])**2 * anchor_h
        level_decoded = torch.stack([cx, cy, w, h, *s[:, :, 4:].unbind(2)], dim=-1)  # B, A, H, W, 5 + C
        expected.append(level_decoded.reshape(batch, -1, head.num_attrib))  # order: anchor, row, column
    expected = torch.cat(expected, dim=1)
    assert decoded.shape == (2, 3 * (8 * 12 + 4 * 6 + 2 * 3), 8)
    torch.testing.assert_close(decoded, expected, rtol=1e-6, atol=1e-4)


def test_test_settings_are_the_official_coco_test():
    cfg = Config.fromfile(CONFIG)
    assert cfg.model.test_cfg.to_dict() == OFFICIAL_TEST_CFG
    assert 'test_cfg' not in cfg.model.bbox_head  # the detector passes its test_cfg to the head
    model = tiny_detector()
    assert model.bbox_head.test_cfg.to_dict() == OFFICIAL_TEST_CFG
    assert YOLOv4CSPHead(num_classes=80).test_cfg.to_dict() == OFFICIAL_TEST_CFG


def test_multi_label_thresholds_and_per_class_nms(head):
    maps = quiet_maps(head, 64, 64)
    # Box A (level 0, cell row 2 col 2, anchor 0: 12 x 16 px at (20, 20)): classes 0 and 1 above the threshold
    # (0.72 and 0.45; a box is kept once per class), class 2 below it (0.9 x 0.001 = 0.0009).
    set_box(maps[0], 0, 2, 2, probs=(0.8, 0.5, 0.001))
    # Box B, same cell, anchor 2 (40 x 28) shaped 12 x 16 and shifted 1 px right: IoU with A 176/208 = 0.85
    # > 0.65. Its class 0 (0.54) is suppressed by A's; its class 2 (0.63) stays, NMS is per class.
    set_box(maps[0], 2, 2, 2, xy=(0.5 + 1 / 16, 0.5), wh=(math.sqrt(12 / 40) / 2, math.sqrt(16 / 28) / 2),
            probs=(0.6, 0.001, 0.7))
    # Box C (level 2) at the score threshold: 0.05 x 0.021 = 0.00105 kept, 0.05 x 0.019 = 0.00095 not.
    set_box(maps[2], 1, 1, 1, obj=0.05, probs=(0.021, 0.019, 0.001))
    meta = dict(img_shape=(64, 64), ori_shape=(64, 64), scale_factor=(1.0, 1.0))
    result, = head.predict_by_feat(flat(maps), [meta])
    box_a = torch.tensor([14.0, 12.0, 26.0, 28.0])
    assert result.labels.tolist() == [0, 2, 1, 0]
    torch.testing.assert_close(result.scores, torch.tensor([0.72, 0.63, 0.45, 0.00105]), rtol=1e-4, atol=0)
    torch.testing.assert_close(result.bboxes[0], box_a)
    torch.testing.assert_close(result.bboxes[2], box_a)
    torch.testing.assert_close(result.bboxes[1], box_a + torch.tensor([1.0, 0, 1.0, 0]), rtol=1e-5, atol=1e-4)
    # Without NMS B's class 0 is there too.
    result, = head.predict_by_feat(flat(maps), [meta], with_nms=False)
    assert sorted(result.labels.tolist()) == [0, 0, 0, 1, 2]


def test_at_most_300_detections_the_best_scores(head):
    torch.manual_seed(0)
    maps = quiet_maps(head, 320, 320)
    # 1600 boxes of class 0 at 8 px spacing (IoU 0.2 with a neighbour: none suppressed), distinct scores.
    maps[0][:, 0, 4] = torch.rand(40, 40) * 4 - 2
    maps[0][:, 0, 5] = 5.0
    maps[0][:, 0, 6:] = -20.0
    meta = dict(img_shape=(320, 320), ori_shape=(320, 320), scale_factor=(1.0, 1.0))
    result, = head.predict_by_feat(flat(maps), [meta])
    candidates = maps[0][0, 0, 4].sigmoid().flatten() * torch.sigmoid(torch.tensor(5.0))
    assert len(result) == 300
    torch.testing.assert_close(result.scores, candidates.sort(descending=True).values[:300])


def test_boxes_go_back_to_the_original_image(head):
    maps = quiet_maps(head, 64, 64)
    set_box(maps[0], 0, 2, 2, probs=(0.8, 0.001, 0.001))  # (14, 12, 26, 28) in the input
    set_box(maps[0], 2, 7, 7, probs=(0.7, 0.001, 0.001))  # 40 x 28 at (60, 60): (40, 46, 80, 74), clipped at 64
    # Letterboxed: 16 px top and 8 px left of padding, then a 2x resize of the original (24 x 28).
    meta = dict(img_shape=(64, 64), ori_shape=(24, 28), scale_factor=(2.0, 2.0), pad_param=np.array([16, 16, 8, 0]))
    result, = head.predict_by_feat(flat(maps), [meta], rescale=True)
    # (14 - 8) / 2 = 3, (12 - 16) / 2 = -2 -> 0: the official test's last step clips to the original image.
    torch.testing.assert_close(result.bboxes, torch.tensor([[3.0, 0.0, 9.0, 6.0], [16.0, 15.0, 28.0, 24.0]]))


def test_nms_runs_on_the_unclipped_boxes_then_the_clip():
    """Two boxes hanging over the left border by different amounts: IoU 60 / 160 = 0.375 as decoded (both
    kept, as Scaled-YOLOv4's test.py keeps them), IoU 1 once clipped (a clip before NMS would drop one)."""
    boxes = torch.tensor([[-100.0, 0.0, 60.0, 100.0], [0.0, 0.0, 60.0, 100.0]])
    scores = torch.tensor([[0.9], [0.8]])
    cfg = ConfigDict(YOLOV4_CSP_TEST_CFG)
    kept, kept_scores, labels = select_detections(boxes, scores, cfg)
    torch.testing.assert_close(kept, boxes)
    assert kept_scores.tolist() == pytest.approx([0.9, 0.8]) and labels.tolist() == [0, 0]
    # Clipped only afterwards, to the padded input, then (rescaled) to the original image.
    meta = dict(img_shape=(128, 128), ori_shape=(50, 40), scale_factor=(2.0, 2.0), pad_param=np.array([14, 14, 24, 24]))
    torch.testing.assert_close(boxes_to_image(kept, meta, rescale=True),
                               torch.tensor([[0.0, 0.0, 18.0, 43.0], [0.0, 0.0, 18.0, 43.0]]))
    # The same through the head, at stride 32 in cell (row 1, column 0) of a 128 x 128 input: box A
    # (-70, 0, 60, 100) on anchor 0 (142 x 110), box B (0, 0, 60, 100) on anchor 1 (192 x 243).
    head = YOLOv4CSPHead(num_classes=1, in_channels=(8, 8, 8), feat_channels=(8, 8, 8))
    maps = quiet_maps(head, 128, 128)
    centre_y = (50 / 32 - 1 + 0.5) / 2
    set_box(maps[2], 0, 1, 0, xy=((-5 / 32 + 0.5) / 2, centre_y),
            wh=(math.sqrt(130 / 142) / 2, math.sqrt(100 / 110) / 2), obj=0.9, probs=(1 - 1e-6, ))
    set_box(maps[2], 1, 1, 0, xy=((30 / 32 + 0.5) / 2, centre_y),
            wh=(math.sqrt(60 / 192) / 2, math.sqrt(100 / 243) / 2), obj=0.8, probs=(1 - 1e-6, ))
    meta = dict(img_shape=(128, 128), ori_shape=(128, 128), scale_factor=(1.0, 1.0))
    result, = head.predict_by_feat(flat(maps), [meta], rescale=True)
    torch.testing.assert_close(result.bboxes, torch.tensor([[0.0, 0.0, 60.0, 100.0]] * 2), rtol=0, atol=1e-3)
    torch.testing.assert_close(result.scores, torch.tensor([0.9, 0.8]), rtol=1e-5, atol=0)


def test_classes_never_suppress_each_other_below_zero():
    """mmcv's batched_nms offsets classes by (max coordinate + 1): with unclipped boxes below -1 a box of
    class 1 can land on one of class 0. Both boxes are kept."""
    boxes = torch.tensor([[-50.0, -50.0, 10.0, 10.0], [-61.0, -61.0, -1.0, -1.0]])
    scores = torch.tensor([[0.9, 0.0], [0.0, 0.8]])
    kept, _, labels = select_detections(boxes, scores, ConfigDict(YOLOV4_CSP_TEST_CFG))
    assert labels.tolist() == [0, 1]
    torch.testing.assert_close(kept, boxes)


def test_bias_priors_and_the_loss_contract():
    calls = {}

    @MODELS.register_module(name='RecordingYOLOv4CSPLoss', force=True)
    class RecordingLoss(nn.Module):
        def __init__(self, **kwargs):
            super().__init__()
            calls['init'] = kwargs

        def forward(self, pred_maps, batch_gt_instances, batch_img_metas):
            calls['forward'] = (pred_maps, batch_gt_instances, batch_img_metas)
            return dict(loss_total=pred_maps[0].sum())

    head = YOLOv4CSPHead(num_classes=3, widen_factor=0.125, loss=dict(type='RecordingYOLOv4CSPLoss', extra=1))
    assert calls['init'] == dict(extra=1, num_classes=3, base_sizes=ANCHORS, strides=[8, 16, 32])
    head.init_weights()
    head.init_weights()  # a second call changes nothing
    for conv, stride in zip(head.convs_pred, (8, 16, 32)):
        bias = conv.bias.view(3, 8)  # Kaiming init_cfg: zero bias, then the priors
        torch.testing.assert_close(bias[:, 4], torch.full((3, ), math.log(8 / (640 / stride)**2)))
        torch.testing.assert_close(bias[:, 5:], torch.full((3, 3), math.log(0.6 / (3 - 0.99))))
        assert not bias[:, :4].any()
    maps = head((torch.randn(1, 16, 8, 8), torch.randn(1, 32, 4, 4), torch.randn(1, 64, 2, 2)))[0]
    losses = head.loss_by_feat(maps, ['gt'], ['meta'])
    assert calls['forward'][0] is maps and calls['forward'][1:] == (['gt'], ['meta'])
    assert set(losses) == {'loss_total'}
    with pytest.raises(ValueError, match="loss=dict\\(type='YOLOv4CSPLoss'\\)"):
        YOLOv4CSPHead(num_classes=3, widen_factor=0.125).loss_by_feat(maps, ['gt'], ['meta'])


def test_letterbox_is_the_official_rectangle(mmdet_scope):
    letterbox = TRANSFORMS.build(dict(type='RectLetterbox', img_size=640))
    # 640 x 480 (w x h) -> 704 x 512: 32 px left and right, 16 top and bottom.
    image = np.full((480, 640, 3), 7, dtype=np.uint8)
    results = letterbox(dict(img=image, ori_shape=(240, 320)))
    assert results['img'].shape == (512, 704, 3) and results['img_shape'] == (512, 704)
    assert results['pad_param'].tolist() == [16, 16, 32, 32]
    assert (results['img'][16:496, 32:672] == 7).all()
    assert (results['img'][:16] == 114).all() and (results['img'][:, :32] == 114).all()
    # Portrait 427 x 640 -> h 704, w ceil(427/640 * 10 + 0.5) * 64 = 512; odd padding: the extra pixel right.
    results = letterbox(dict(img=np.zeros((640, 427, 3), np.uint8), ori_shape=(640, 427)))
    assert results['img'].shape[:2] == (704, 512) and results['pad_param'].tolist() == [32, 32, 42, 43]
    with pytest.raises(ValueError, match='resize it to the long side'):
        letterbox(dict(img=np.zeros((800, 800, 3), np.uint8), ori_shape=(800, 800)))


def letterboxed_sample(tiny_coco, resolution):
    """The config at ``resolution`` (tools/test.py --resolution) and its first test sample of ``tiny_coco``."""
    cfg = Config.fromfile(CONFIG)
    dataset_cfg = cfg.test_dataloader.dataset
    dataset_cfg.update(data_root=tiny_coco['data_root'], ann_file='annotations/instances_val.json',
                       data_prefix=dict(img='val/'), metainfo=dict(classes=tiny_coco['classes']))
    set_test_resolution(cfg, [resolution])
    return cfg, DATASETS.build(dataset_cfg)[0]


@pytest.mark.parametrize('resolution', [512, 640, 1280])
def test_config_builds_at_the_test_resolutions(resolution, tiny_coco, mmdet_scope):
    cfg, sample = letterboxed_sample(tiny_coco, resolution)
    height, width = sample['data_samples'].ori_shape
    side = lambda s: math.ceil(s / max(height, width) * resolution / 64 + 0.5) * 64  # noqa: E731
    assert tuple(sample['inputs'].shape[1:]) == (side(height), side(width))
    # Centred: the head removes this offset (top, bottom, left, right) before rescaling.
    scale = resolution / max(height, width)
    new_h, new_w = int(height * scale + 0.5), int(width * scale + 0.5)
    top, left = (side(height) - new_h) // 2, (side(width) - new_w) // 2
    assert sample['data_samples'].pad_param.tolist() == [top, side(height) - new_h - top, left,
                                                         side(width) - new_w - left]
    with pytest.raises(ValueError, match='give one resolution'):
        set_test_resolution(cfg, [384, 640])


def test_config_predicts_at_a_small_size(tiny_coco, mmdet_scope):
    _, sample = letterboxed_sample(tiny_coco, 128)
    model = tiny_detector(num_classes=len(tiny_coco['classes']))
    with torch.no_grad():
        result, = model.test_step(dict(inputs=[sample['inputs']], data_samples=[sample['data_samples']]))
    assert result.pred_instances.bboxes.shape[1] == 4 and len(result.pred_instances) <= 300


def test_folding_every_conv_norm_is_exact():
    torch.manual_seed(0)
    model = tiny_detector()
    model.init_weights()
    randomize_norm_stats(model)
    model.eval()
    inputs = torch.randn(1, 3, 96, 160)
    with torch.no_grad():
        before = model.bbox_head.decode(model.bbox_head(model.extract_feat(inputs))[0])
        assert fold_conv_module_norms(model) == 112
        after = model.bbox_head.decode(model.bbox_head(model.extract_feat(inputs))[0])
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    assert relative_error(after, before) <= 1e-5


def test_inference_engine_and_onnx_wrapper_run_this_head():
    torch.manual_seed(0)
    model = tiny_detector()
    head = model.bbox_head
    head.convs_pred[0].bias.data[4::head.num_attrib] = 5.0  # confident P3 boxes: detections to compare
    engine = DetectorEngine(model, model.cfg, 'cpu', input_size=(128, 128))
    image = np.random.default_rng(0).integers(0, 256, (60, 100, 3), dtype=np.uint8)
    batch, metas = engine.preprocess([image])
    # The engine falls back to the head's own (official multi-label) predict_by_feat.
    sample, = engine([image])
    with torch.no_grad():
        expected, = model.bbox_head.predict_by_feat(*model.bbox_head(model.extract_feat(batch)), metas, rescale=True)
    assert len(sample.pred_instances) > 0
    torch.testing.assert_close(sample.pred_instances.bboxes, expected.bboxes)
    assert (sample.pred_instances.bboxes[:, 2] <= 100 + 1e-3).all()  # clipped to the image, then rescaled
    # ONNX graph module: boxes and obj x cls scores of every prediction, as the head decodes them.
    wrapper = OnnxExportWrapper(engine.dense_network, engine.preprocess.settings).eval()
    pixels = wrapper.letterboxed_inputs(2)
    with torch.no_grad():
        boxes, scores = wrapper(pixels)
        decoded = model.bbox_head.decode(model.bbox_head(model.extract_feat(pixels.flip(1) / 255))[0])
    assert boxes.shape == (2, decoded.shape[1], 4) and scores.shape == (2, decoded.shape[1], 5)
    torch.testing.assert_close(scores, decoded[..., 5:] * decoded[..., 4:5])
    torch.testing.assert_close(boxes[..., 2:] - boxes[..., :2], decoded[..., 2:4], rtol=1e-5, atol=1e-4)
    torch.testing.assert_close((boxes[..., 2:] + boxes[..., :2]) / 2, decoded[..., :2], rtol=1e-5, atol=1e-4)
    # The post-processing documented for the graph's outputs gives the engine's (the head's) detections.
    with torch.no_grad():
        graph_outputs = wrapper((batch * 255).flip(1))
    detections, = wrapper.postprocess(*graph_outputs, metas)  # postprocess_multilabel_detections for this head
    assert len(detections) == len(postprocess_multilabel_detections(*graph_outputs, metas, wrapper.test_cfg)[0])
    torch.testing.assert_close(detections.bboxes, sample.pred_instances.bboxes, rtol=1e-5, atol=1e-3)
    torch.testing.assert_close(detections.scores, sample.pred_instances.scores, rtol=1e-4, atol=1e-6)
    assert detections.labels.tolist() == sample.pred_instances.labels.tolist()
