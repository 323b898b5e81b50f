import json
import os
import os.path as osp

import cv2
import pytest
import torch
from pycocotools.coco import COCO

from mmdet.datasets import CocoDataset
from mmdet.evaluation import CocoMetric

from parnet_det.datasets import CLASSES, SHAPES, generate_synthetic_coco, synthetic_coco_metainfo

from ..helpers import run_tool

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
# Small enough to generate in a fraction of a second.
TINY = dict(num_train=8, num_val=4, image_size=128)
SPLITS = ('train', 'val')


@pytest.fixture(scope='module')
def dataset(tmp_path_factory):
    return generate_synthetic_coco(str(tmp_path_factory.mktemp('synthetic_coco')), **TINY)


def _load_coco(dataset, split):
    return COCO(osp.join(dataset['data_root'], dataset[split]['ann_file']))


def _read_tree(root):
    """Every file under ``root``, as relative path -> bytes."""
    files = {}
    for directory, _, names in os.walk(root):
        for name in names:
            path = osp.join(directory, name)
            with open(path, 'rb') as f:
                files[osp.relpath(path, root)] = f.read()
    return files


@pytest.mark.parametrize('split', SPLITS)
def test_split_loads_with_pycocotools(dataset, split):
    coco = _load_coco(dataset, split)
    assert len(coco.getImgIds()) == dataset[split]['num_images'] == TINY[f'num_{split}']
    assert len(coco.getAnnIds()) == dataset[split]['num_objects']
    assert [cat['name'] for cat in coco.loadCats(coco.getCatIds())] == list(CLASSES)
    for image_info in coco.loadImgs(coco.getImgIds()):
        image = cv2.imread(osp.join(dataset['data_root'], split, image_info['file_name']))
        assert image.shape == (image_info['height'], image_info['width'], 3) == (128, 128, 3)
        # Every image holds at least one object.
        assert coco.getAnnIds(imgIds=image_info['id'])


@pytest.mark.parametrize('split', SPLITS)
def test_split_loads_as_mmdet_coco_dataset(dataset, split, mmdet_scope):
    coco_dataset = CocoDataset(data_root=dataset['data_root'], ann_file=dataset[split]['ann_file'],
                               data_prefix=dataset[split]['data_prefix'], metainfo=synthetic_coco_metainfo(),
                               pipeline=[])
    coco_dataset.full_init()
    assert len(coco_dataset) == dataset[split]['num_images']
    num_instances = 0
    for index in range(len(coco_dataset)):
        data_info = coco_dataset.get_data_info(index)
        assert osp.isfile(data_info['img_path'])
        assert all(0 <= instance['bbox_label'] < len(CLASSES) for instance in data_info['instances'])
        num_instances += len(data_info['instances'])
    assert num_instances == dataset[split]['num_objects']


def test_same_seed_gives_identical_bytes_and_another_seed_differs(tmp_path):
    first = _read_tree(generate_synthetic_coco(str(tmp_path / 'first'), seed=1, **TINY)['data_root'])
    second = _read_tree(generate_synthetic_coco(str(tmp_path / 'second'), seed=1, **TINY)['data_root'])
    assert first == second
    other = _read_tree(generate_synthetic_coco(str(tmp_path / 'other'), seed=2, **TINY)['data_root'])
    assert other.keys() == first.keys()
    assert all(other[path] != first[path] for path in first)
    # Each image has its own random stream, so a smaller set is a prefix of a larger one.
    prefix = _read_tree(generate_synthetic_coco(str(tmp_path / 'prefix'), seed=1, num_train=3, num_val=1,
                                                image_size=128)['data_root'])
    assert all(prefix[path] == first[path] for path in prefix if not path.startswith('annotations'))


def test_boxes_lie_inside_images_with_varied_sizes_and_classes(dataset):
    longer_sides, labels = [], set()
    for split in SPLITS:
        coco = _load_coco(dataset, split)
        for ann in coco.loadAnns(coco.getAnnIds()):
            image_info = coco.imgs[ann['image_id']]
            x, y, w, h = ann['bbox']
            assert w > 0 and h > 0 and x >= 0 and y >= 0
            assert x + w <= image_info['width'] and y + h <= image_info['height']
            assert 0 < ann['area'] <= w * h
            assert ann['iscrowd'] == 0
            longer_sides.append(max(w, h))
            labels.add(ann['category_id'])
    # Sizes are drawn from 8% to 45% of the side; one pixel of slack for rasterization.
    assert 0.08 * 128 - 1 <= min(longer_sides) and max(longer_sides) <= 0.45 * 128 + 1
    assert max(longer_sides) / min(longer_sides) > 2
    assert len(labels) >= 3


def test_ground_truth_as_predictions_scores_perfect_coco_ap(dataset):
    coco = _load_coco(dataset, 'val')
    metric = CocoMetric(ann_file=osp.join(dataset['data_root'], dataset['val']['ann_file']), metric='bbox')
    metric.dataset_meta = synthetic_coco_metainfo()
    for image_info in coco.loadImgs(coco.getImgIds()):
        anns = coco.loadAnns(coco.getAnnIds(imgIds=image_info['id']))
        bboxes = torch.tensor([[x, y, x + w, y + h] for x, y, w, h in (ann['bbox'] for ann in anns)],
                              dtype=torch.float32)
        labels = torch.tensor([CLASSES.index(coco.cats[ann['category_id']]['name']) for ann in anns])
        pred_instances = dict(bboxes=bboxes, scores=torch.ones(len(anns)), labels=labels)
        metric.process({}, [dict(img_id=image_info['id'], ori_shape=(image_info['height'], image_info['width']),
                                 pred_instances=pred_instances)])
    results = metric.evaluate(size=dataset['val']['num_images'])
    assert results['coco/bbox_mAP'] == 1.0
    assert results['coco/bbox_mAP_50'] == 1.0


def test_invalid_arguments_are_refused(tmp_path):
    with pytest.raises(ValueError, match='num_classes'):
        generate_synthetic_coco(str(tmp_path), num_classes=len(SHAPES) + 1)
    with pytest.raises(ValueError, match='size_range'):
        generate_synthetic_coco(str(tmp_path), size_range=(0.5, 0.2))
    assert synthetic_coco_metainfo(len(SHAPES)) == dict(classes=SHAPES)


def test_cli_writes_the_dataset_and_explains_the_config_overrides(tmp_path, capsys):
    out_dir = tmp_path / 'cli'
    code, stdout, err = run_tool(capsys, 'dataset/generate_synthetic_coco.py', out_dir, '--num-train', '2', '--num-val',
                                 '1', '--image-size', '64', '96', '--num-classes', '3', '--seed', '5')
    assert code == 0, err
    with open(out_dir / 'annotations' / 'instances_train.json') as f:
        train = json.load(f)
    assert [(image['height'], image['width']) for image in train['images']] == [(64, 96)] * 2
    assert [cat['name'] for cat in train['categories']] == list(SHAPES[:3])
    assert (out_dir / 'val' / '000001.jpg').is_file()
    assert f'train_dataloader.dataset.data_root={out_dir}/' in stdout
    assert f'val_evaluator.ann_file={out_dir}/annotations/instances_val.json' in stdout
    assert 'num_classes=3' in stdout
