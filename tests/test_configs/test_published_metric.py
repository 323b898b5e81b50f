"""The YOLOv4-CSP family's COCO evaluator computes every AP number at COCOeval's own maxDets (1, 10, 100),
as Scaled-YOLOv4's test.py, not at mmdet's default 1000 detections per image."""
import glob
import json
import os.path as osp

import pytest
import torch

from mmdet.registry import METRICS

from parnet_det.utils.config import load_config

from ..helpers import REPO

PUBLISHED_FAMILY = sorted(glob.glob(str(REPO / 'configs/yolov4_csp/*.py'))
                          + glob.glob(str(REPO / 'configs/yolor/*.py')))


def ranked_after_100_decoys(ann_file):
    """Per image and class (COCOeval's maxDets counts per image and category), 100 confident boxes on no
    object, then every ground-truth box at a lower score: the true detections are ranks 101 and after."""
    with open(ann_file) as file:
        coco = json.load(file)
    category_ids = [category['id'] for category in coco['categories']]
    samples = []
    for image in coco['images']:
        truths = [ann for ann in coco['annotations'] if ann['image_id'] == image['id']]
        decoys = len(category_ids) * 100
        boxes = [[0.0, 0.0, 1.0 + i / decoys, 1.0] for i in range(decoys)]
        boxes += [[x, y, x + w, y + h] for x, y, w, h in (ann['bbox'] for ann in truths)]
        labels = [i // 100 for i in range(decoys)] + [category_ids.index(ann['category_id']) for ann in truths]
        samples.append(dict(img_id=image['id'], ori_shape=(image['height'], image['width']), pred_instances=dict(
            bboxes=torch.tensor(boxes), scores=torch.tensor([0.9] * decoys + [0.5] * len(truths)),
            labels=torch.tensor(labels))))
    return samples, [category['name'] for category in coco['categories']]


def evaluate(metric_cfg, samples, classes):
    metric = METRICS.build(metric_cfg)
    metric.dataset_meta = dict(classes=classes)
    metric.process({}, samples)
    return metric.compute_metrics(metric.results)


@pytest.mark.parametrize('config', PUBLISHED_FAMILY, ids=osp.basename)
def test_ap50_counts_the_first_100_detections_only(config, tiny_coco, tmp_path, mmdet_scope):
    ann_file = osp.join(tiny_coco['data_root'], 'annotations/instances_val.json')
    samples, classes = ranked_after_100_decoys(ann_file)
    cfg = load_config(config)
    for evaluator in (cfg.val_evaluator, cfg.test_evaluator):
        published = evaluate(dict(evaluator, ann_file=ann_file, outfile_prefix=None), samples, classes)
        assert published['bbox_mAP_50'] == 0.0 and published['bbox_mAP'] == 0.0
    # The control: at mmdet's default maxDets (100, 300, 1000) AP50 counts the true boxes (after the decoys:
    # a low precision, but not 0), AP (at 100) does not.
    default = evaluate(dict(type='CocoMetric', ann_file=ann_file, metric='bbox'), samples, classes)
    assert default['bbox_mAP_50'] > 0.0 and default['bbox_mAP'] == 0.0
