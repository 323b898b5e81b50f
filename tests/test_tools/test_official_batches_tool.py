"""tools/test.py --official-batches N: the official test's batches through the real dataloader and the tool."""
import json
import os
import os.path as osp
import pickle
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch
from mmengine.runner import Runner

from parnet_det.apis import build_detector, set_test_resolution, use_official_batches
from parnet_det.utils.config import load_config

from ..helpers import REPO
from ..test_benchmark.test_measurements import TINY_YOLOV4_CSP
from ..test_datasets.test_official_batches import reference_batch_shapes

CONFIG = 'configs/yolov4_csp_coco.py'
SIDE = 160  # the test's long side (--resolution 160), for small images


def write_val_set(root, sizes):
    """A COCO val split of noise images of the given (h, w), one box each, file names in order."""
    os.makedirs(osp.join(root, 'val'))
    rng = np.random.default_rng(0)
    images, annotations = [], []
    for index, (h, w) in enumerate(sizes):
        name = f'{index:04d}.jpg'
        cv2.imwrite(osp.join(root, 'val', name), rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
        images.append(dict(id=index + 1, file_name=name, height=h, width=w))
        annotations.append(dict(id=index + 1, image_id=index + 1, category_id=1, bbox=[2, 3, w // 2, h // 3],
                                area=w * h / 6, iscrowd=0))
    with open(osp.join(root, 'val.json'), 'w') as f:
        json.dump(dict(images=images, annotations=annotations, categories=[dict(id=1, name='shape')]), f)


def tiny_test_config(root):
    cfg = load_config(CONFIG, TINY_YOLOV4_CSP)
    cfg.model.bbox_head.num_classes = 1
    dataset = cfg.test_dataloader.dataset
    dataset.update(data_root=root, ann_file='val.json', data_prefix=dict(img='val/'), metainfo=dict(classes=('shape',)))
    cfg.test_dataloader.update(num_workers=0, persistent_workers=False)
    cfg.test_evaluator.ann_file = osp.join(root, 'val.json')
    return set_test_resolution(cfg, [SIDE])


# (h, w): wide, tall and square images in no order; long sides up to 2 x SIDE (resized down).
SIZES = [(120, 160), (240, 320), (160, 107), (90, 160), (320, 213), (150, 160), (160, 160), (128, 160), (160, 90),
         (200, 320), (160, 150), (107, 160), (160, 128), (320, 240), (96, 160), (160, 100), (130, 160), (300, 300)]


def test_the_dataloader_gives_the_official_batches(tmp_path, mmdet_scope):
    root = str(tmp_path)
    write_val_set(root, SIZES)
    cfg = use_official_batches(tiny_test_config(root), 8)
    order, shapes = reference_batch_shapes(SIZES, 8, img_size=SIDE)
    seen = []
    for batch in Runner.build_dataloader(cfg.test_dataloader):
        assert len({tuple(image.shape) for image in batch['inputs']}) == 1  # one shape per batch
        for image, sample in zip(batch['inputs'], batch['data_samples']):
            index = int(osp.splitext(osp.basename(sample.img_path))[0])
            assert tuple(image.shape[1:]) == shapes[index] == sample.img_shape, index
            seen.append(index)
    assert seen == order
    assert cfg.model.test_cfg.unletterbox == 'official'


def test_only_where_it_means_something(tmp_path):
    with pytest.raises(ValueError, match='needs a CheckedCocoDataset test set with a RectLetterbox step'):
        use_official_batches(load_config('configs/yolo_parnet_s_coco.py'), 8)
    with pytest.raises(ValueError, match='runs on one process'):
        use_official_batches(load_config(CONFIG), 8, launcher='pytorch')


@pytest.mark.slow
def test_batch_8_detects_what_batch_1_detects_where_the_shapes_coincide(tmp_path):
    # All images 160 x 120 (one aspect ratio: every batch shape is each image's own rectangle, 192 x 192, with even
    # padding and equal gains, where the official and the default box arithmetic agree).
    root = str(tmp_path / 'data')
    write_val_set(root, [(120, 160)] * 12)
    cfg = tiny_test_config(root)
    config = str(tmp_path / 'tiny.py')
    cfg.dump(config)
    torch.manual_seed(0)
    model = build_detector(cfg)
    for conv in model.bbox_head.convs_pred:  # scores spread around 0.5: hundreds of boxes reach the NMS
        conv.weight.data.normal_(0, 0.05)
        conv.bias.data.zero_()
    checkpoint = str(tmp_path / 'random.pth')
    torch.save(dict(state_dict=model.state_dict(), meta=dict(dataset_meta=dict(classes=('shape', )))), checkpoint)
    results = {}
    for name, extra in (('batch 1', []), ('batch 8', ['--official-batches', '8'])):
        out = str(tmp_path / f'{name.replace(" ", "")}.pkl')
        run = subprocess.run([sys.executable, 'tools/test.py', config, checkpoint, '--work-dir',
                              str(tmp_path / name.replace(' ', '')), '--out', out, *extra], cwd=REPO,
                             capture_output=True, text=True)
        assert run.returncode == 0, run.stderr[-3000:]
        with open(out, 'rb') as f:
            results[name] = {r['img_id']: r['pred_instances'] for r in pickle.load(f)}
    assert results['batch 1'].keys() == results['batch 8'].keys() and len(results['batch 1']) == 12
    # A batch of 8 sums its convolutions in another order than a batch of 1 (differences ~1e-6), which may flip a
    # near-tie of the NMS among hundreds of random boxes: nearly every detection has its twin, none is far off.
    matched = total = 0
    for img_id, single in results['batch 1'].items():
        batched = results['batch 8'][img_id]
        assert len(single['bboxes']) > 50 and abs(len(batched['bboxes']) - len(single['bboxes'])) <= 2
        close = ((single['bboxes'][:, None] - batched['bboxes'][None]).abs().amax(-1) < 1e-3) & \
            ((single['scores'][:, None] - batched['scores'][None]).abs() < 1e-5) & \
            (single['labels'][:, None] == batched['labels'][None])
        matched += int(close.any(1).sum())
        total += len(single['bboxes'])
    assert matched >= 0.99 * total, (matched, total)
