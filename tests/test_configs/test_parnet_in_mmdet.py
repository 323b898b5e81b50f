"""ParNet inside mmdet's own detectors: build, one training iteration, prediction, folding."""
import glob
import json
import os.path as osp
import shutil

import pytest
import torch
from mmengine.config import Config

from mmdet.registry import DATASETS, MODELS

from parnet_det.deploy import switch_to_deploy

from ..helpers import head_outputs, relative_error

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
# ParNet-S runs in make test-fast; the XL twins of the same detectors only in make test.
CONFIGS = [pytest.param(path, marks=pytest.mark.slow) if '_parnet_xl_' in path else path
           for path in sorted(glob.glob(osp.join(ROOT, 'configs', 'parnet_in_mmdet', '*.py')))]
SIZE = 128


@pytest.fixture(scope='module')
def coco_with_masks(tiny_coco, tmp_path_factory):
    """The generated dataset with box-shaped polygon masks, so that Mask R-CNN can train on it."""
    root = str(tmp_path_factory.mktemp('coco_masks') / 'data')
    shutil.copytree(tiny_coco['data_root'], root)
    for split in ('train', 'val'):
        path = osp.join(root, f'annotations/instances_{split}.json')
        with open(path) as f:
            content = json.load(f)
        for ann in content['annotations']:
            x, y, w, h = ann['bbox']
            ann['segmentation'] = [[x, y, x + w, y, x + w, y + h, x, y + h]]
        with open(path, 'w') as f:
            json.dump(content, f)
    return dict(tiny_coco, data_root=root + '/')


def _small_config(path, data):
    cfg = Config.fromfile(path)
    for split, image_dir in (('train', 'train/'), ('test', 'val/')):
        dataset = cfg[f'{split}_dataloader'].dataset
        dataset.update(data_root=data['data_root'], ann_file=f'annotations/instances_{image_dir[:-1]}.json',
                       data_prefix=dict(img=image_dir), metainfo=dict(classes=data['classes']))
        for step in dataset.pipeline:
            if step['type'] == 'Resize':
                step['scale'] = (SIZE, SIZE)
    heads = [cfg.model.get('bbox_head')] + [cfg.model.get('roi_head', {}).get(k) for k in ('bbox_head', 'mask_head')]
    for head in filter(None, heads):
        head.num_classes = len(data['classes'])
    # Keep every scored box: a freshly initialised head scores below the COCO thresholds, and
    # comparing two empty predictions would prove nothing.
    for test_cfg in (cfg.model.test_cfg, cfg.model.test_cfg.get('rcnn')):
        if test_cfg is not None and 'score_thr' in test_cfg:
            test_cfg.score_thr = 0.0
    return cfg


@pytest.mark.parametrize('config', CONFIGS, ids=lambda path: osp.basename(path))
def test_parnet_detector_trains_predicts_and_folds(config, coco_with_masks, mmdet_scope):
    cfg = _small_config(config, coco_with_masks)
    model = MODELS.build(cfg.model)
    model.init_weights()
    train_set, test_set = DATASETS.build(cfg.train_dataloader.dataset), DATASETS.build(cfg.test_dataloader.dataset)

    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)
    batch = model.data_preprocessor(dict(inputs=[train_set[0]['inputs']], data_samples=[train_set[0]['data_samples']]),
                                    True)
    losses = model.loss(batch['inputs'], batch['data_samples'])
    total = sum(v if isinstance(v, torch.Tensor) else sum(v) for k, v in losses.items() if 'loss' in k)
    assert torch.isfinite(total)
    total.backward()
    assert model.backbone.stem[0].conv3x3.conv.weight.grad is not None
    optimizer.step()

    model.eval()
    data = dict(inputs=[test_set[0]['inputs']], data_samples=[test_set[0]['data_samples']])
    with torch.no_grad():
        before = head_outputs(model, data)
        assert len(model.test_step(data)[0].pred_instances) > 0
        assert switch_to_deploy(model) > 0
        after = head_outputs(model, data)
        assert len(model.test_step(data)[0].pred_instances) > 0
    # What the predictions are computed from is unchanged by folding. (Comparing the final boxes
    # instead would test tie-breaking: an untrained head scores many boxes alike, and float noise
    # decides which of them top-k and NMS keep.)
    assert len(before) == len(after) > 0
    for original, folded in zip(before, after):
        assert relative_error(folded, original) <= 1e-4

