"""One geometry for every path: for the YOLOv4-CSP family (centred RectLetterbox, INTER_AREA resize),
tools/infer.py --ann-file detects what tools/test.py detects, box for box, and COCOeval gives the same AP."""
import json
import os.path as osp

import numpy as np
import pytest
import torch

from parnet_det.datasets import generate_synthetic_coco
from parnet_det.models import build_detector
from parnet_det.models.utils import make_divisible

from ..helpers import coco_stats
from .test_train_test_end_to_end import run_tool

CONFIG = 'configs/yolov4_csp_coco.py'
WIDEN = 0.125


def narrow_options(num_classes):
    """The published detector at 1/8 width (every layer there), ``num_classes`` classes."""
    return {'model.backbone.widen_factor': WIDEN, 'model.neck.widen_factor': WIDEN,
            'model.neck.in_channels': [make_divisible(c * WIDEN) for c in (256, 512, 1024)],
            'model.bbox_head.widen_factor': WIDEN, 'model.bbox_head.num_classes': num_classes}


def cli(options):
    return [f'{key}={value}'.replace(' ', '').replace("'", '') for key, value in options.items()]


@pytest.fixture(scope='module')
def landscape_coco(tmp_path_factory):
    """Generated 96 x 160 images: letterboxed at 128 they are 77 x 128 inside a centred 128 x 192 rectangle."""
    return generate_synthetic_coco(str(tmp_path_factory.mktemp('landscape')), num_train=2, num_val=4,
                                   image_size=(96, 160), seed=3)


@pytest.fixture(scope='module')
def spread_checkpoint(landscape_coco, tmp_path_factory):
    """Random weights whose prediction maps are N(0, 1) logits on such images: scores spread over (0, 1)
    without ties, thousands of candidates, NMS and the 300-detection cut at work, boxes over the borders."""
    torch.manual_seed(0)
    model = build_detector(CONFIG, cfg_options=narrow_options(len(landscape_coco['classes']))).eval()
    gen = torch.Generator().manual_seed(0)
    for conv in model.bbox_head.convs_pred:
        conv.weight.data.normal_(0, 0.05, generator=gen)
        conv.bias.data.zero_()
    with torch.no_grad():
        maps = model.bbox_head(model.extract_feat(torch.rand(2, 3, 128, 192, generator=gen)))[0]
        for conv, level in zip(model.bbox_head.convs_pred, maps):
            conv.weight.data /= level.std()
    path = str(tmp_path_factory.mktemp('ckpt') / 'spread.pth')
    torch.save(dict(state_dict=model.state_dict(),
                    meta=dict(dataset_meta=dict(classes=landscape_coco['classes']))), path)
    return path


def by_image(records):
    """{image_id: rows of (score, x, y, w, h, category_id)}."""
    grouped = {}
    for record in records:
        grouped.setdefault(record['image_id'], []).append((record['score'], *record['bbox'], record['category_id']))
    return {image_id: np.array(rows) for image_id, rows in grouped.items()}


def assert_same_detections(actual, expected):
    """One to one: every detection has its own partner of the same class, box within 0.01 px and score within
    1e-4 (the engine runs the folded network, BatchNorms in the convs, tools/test.py the trained form: float
    rounding, measured at most 0.004 px; scores that close may swap ranks, so partners are matched, not ranks)."""
    assert actual.shape == expected.shape
    unmatched = np.ones(len(expected), dtype=bool)
    for row in actual:
        close = (unmatched & (expected[:, 5] == row[5]) & (np.abs(expected[:, 0] - row[0]) <= 1e-4)
                 & (np.abs(expected[:, 1:5] - row[1:5]).max(axis=1) <= 0.01))
        assert close.any(), f'no partner for {row.tolist()}'
        unmatched[np.argmax(close)] = False


@pytest.mark.slow
def test_infer_detects_what_test_detects(landscape_coco, spread_checkpoint, tmp_path):
    data_root = landscape_coco['data_root']
    ann_file = osp.join(data_root, 'annotations/instances_val.json')
    classes = '(' + ','.join(landscape_coco['classes']) + ')'
    options = cli(narrow_options(len(landscape_coco['classes']))) + [
        'test_dataloader.dataset.pipeline.1.scale=(128,128)', 'test_dataloader.dataset.pipeline.2.img_size=128',
        f'test_dataloader.dataset.data_root={data_root}', 'test_dataloader.dataset.data_prefix.img=val/',
        'test_dataloader.dataset.ann_file=annotations/instances_val.json',
        f'test_dataloader.dataset.metainfo.classes={classes}']
    work_dir = str(tmp_path / 'test')
    run_tool('tools/test.py', CONFIG, spread_checkpoint, '--work-dir', work_dir, '--cfg-options', *options,
             f'test_evaluator.ann_file={ann_file}', f'test_evaluator.outfile_prefix={work_dir}/detections')
    with open(osp.join(work_dir, 'detections.bbox.json')) as file:
        tested = json.load(file)
    out_dir = str(tmp_path / 'infer')
    run_tool('tools/infer.py', CONFIG, spread_checkpoint, osp.join(data_root, 'val'), '--out-dir', out_dir,
             '--ann-file', ann_file, '--score-thr', '0.001', '--no-draw', '--device', 'cpu', '--cfg-options',
             *options)
    with open(osp.join(out_dir, 'detections.json')) as file:
        inferred = json.load(file)
    assert len(tested) > 4 * 100  # NMS kept hundreds per image: the comparison is not of a few boxes
    expected, actual = by_image(tested), by_image(inferred)
    assert expected.keys() == actual.keys()
    for image_id, rows in expected.items():
        assert_same_detections(actual[image_id], rows)
    # Inside the original 160 x 96 image: clipped after the letterbox is removed.
    boxes = np.array([record['bbox'] for record in inferred])
    assert boxes[:, 0].min() >= 0 and (boxes[:, 0] + boxes[:, 2]).max() <= 160 + 1e-3
    assert (boxes[:, 1] + boxes[:, 3]).max() <= 96 + 1e-3
    np.testing.assert_allclose(coco_stats(ann_file, inferred), coco_stats(ann_file, tested), atol=1e-4)
