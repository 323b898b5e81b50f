"""Bad data is reported with its file name: skipped in training, an error in evaluation."""
import json
import os.path as osp

import pytest

from mmdet.registry import DATASETS

from parnet_det.datasets import CheckedLoadImageFromFile


def test_corrupt_image_is_skipped_with_a_warning_in_training(tiny_coco, data_root, warnings_logged, mmdet_scope):
    root = data_root
    with open(osp.join(root, 'annotations/instances_train.json')) as f:
        first_image = json.load(f)['images'][0]['file_name']
    with open(osp.join(root, 'train', first_image), 'wb') as f:
        f.write(b'not a jpeg')
    dataset = DATASETS.build(dict(
        type='CheckedCocoDataset', data_root=root, ann_file='annotations/instances_train.json',
        data_prefix=dict(img='train/'), metainfo=dict(classes=tiny_coco['classes']),
        pipeline=[dict(type='CheckedLoadImageFromFile', on_error='skip'), dict(type='LoadAnnotations')]))
    sample = dataset[0]  # mmengine draws another image instead
    assert sample['img_path'] != osp.join(root, 'train', first_image)
    assert any(f'cannot read image {osp.join(root, "train", first_image)}' in w for w in warnings_logged)


def test_corrupt_image_stops_evaluation_naming_the_file(tmp_path):
    bad = tmp_path / 'broken.jpg'
    bad.write_bytes(b'\xff\xd8 truncated')
    with pytest.raises(OSError, match=r'cannot read image .*broken\.jpg'):
        CheckedLoadImageFromFile(on_error='raise')(dict(img_path=str(bad)))


def test_invalid_boxes_are_reported_with_the_file_name(tiny_coco, data_root, warnings_logged, mmdet_scope):
    root = data_root
    ann_path = osp.join(root, 'annotations/instances_train.json')
    with open(ann_path) as f:
        content = json.load(f)
    broken = content['annotations'][0]
    broken['bbox'] = [10, 10, 0, 25]
    image = next(i for i in content['images'] if i['id'] == broken['image_id'])
    with open(ann_path, 'w') as f:
        json.dump(content, f)
    dataset = DATASETS.build(dict(
        type='CheckedCocoDataset', data_root=root, ann_file='annotations/instances_train.json',
        data_prefix=dict(img='train/'), metainfo=dict(classes=tiny_coco['classes']), pipeline=[]))
    dataset.full_init()
    expected = f'skipping annotation {broken["id"]} of {image["file_name"]}: box smaller than 1 pixel'
    assert any(expected in w for w in warnings_logged), warnings_logged


def test_on_error_is_validated():
    with pytest.raises(ValueError, match='on_error'):
        CheckedLoadImageFromFile(on_error='ignore')
