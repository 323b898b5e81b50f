"""Pre-flight identity checks: ids, image files and category order of every split's files, before anything is built."""
import hashlib
import json
import os

import pytest

from mmdet.registry import DATASETS

from parnet_det.datasets import CLASSES, DatasetConfigError, check_dataset_config, synthetic_coco_cfg_options

from ..helpers import run_tool
from .test_data_preflight import DEMO_CONFIG, demo_cfg, edit_annotations, preflight_error


def test_duplicate_image_ids_stop(data_root):
    def give_image_1_the_id_of_image_0(content):
        old_id, new_id = content['images'][1]['id'], content['images'][0]['id']
        content['images'][1]['id'] = new_id
        for ann in content['annotations']:
            ann['image_id'] = new_id if ann['image_id'] == old_id else ann['image_id']

    content = edit_annotations(data_root, 'train', give_image_1_the_id_of_image_0)
    message = preflight_error(demo_cfg(data_root))
    assert (f"instances_train.json: image ids [{content['images'][0]['id']}] are each given to more than one image"
            in message)
    assert 'give every image its own id' in message


def test_duplicate_annotation_ids_stop(data_root):
    def repeat_two_ids(content):
        content['annotations'][3]['id'] = content['annotations'][0]['id']
        content['annotations'][4]['id'] = content['annotations'][1]['id']

    content = edit_annotations(data_root, 'val', repeat_two_ids)
    message = preflight_error(demo_cfg(data_root))
    ids = [content['annotations'][0]['id'], content['annotations'][1]['id']]
    assert f'instances_val.json: annotation ids {ids} are each given to more than one annotation' in message


@pytest.mark.parametrize('split', ['train', 'val'])
def test_a_listed_image_that_is_missing_stops(data_root, split):
    content = edit_annotations(data_root, split, lambda c: None)
    name = content['images'][2]['file_name']
    os.remove(os.path.join(data_root, split, name))
    message = preflight_error(demo_cfg(data_root))
    assert (f"instances_{split}.json: 1 of the {len(content['images'])} images it lists are not files in "
            f"{os.path.join(data_root, split + '/')}: ['{name}']; restore them, or remove them") in message


@pytest.mark.parametrize('split', ['train', 'val'])
def test_categories_in_another_order_than_the_classes_stop(data_root, split):
    # Same ids, same names, the first two listed the other way round: label 0 would be trained as 'rectangle'.
    edit_annotations(data_root, split, lambda c: c.update(categories=[c['categories'][1], c['categories'][0],
                                                                      *c['categories'][2:]]))
    message = preflight_error(demo_cfg(data_root))
    assert (f"instances_{split}.json: the file lists the {split} dataset's classes in the order "
            "['rectangle', 'circle', 'triangle', 'ring', 'cross'], the config in the order "
            "['circle', 'rectangle', 'triangle', 'ring', 'cross']") in message
    assert "set metainfo=dict(classes=('rectangle', 'circle', 'triangle', 'ring', 'cross'))" in message


def test_the_evaluators_file_is_checked_too(data_root, tmp_path):
    cfg = demo_cfg(data_root)
    other = edit_annotations(data_root, 'val', lambda c: None)
    other['annotations'][1]['id'] = other['annotations'][0]['id']
    other['categories'] = other['categories'][::-1]
    path = tmp_path / 'evaluator.json'
    path.write_text(__import__('json').dumps(other))
    cfg.val_evaluator.ann_file = str(path)
    message = preflight_error(cfg)
    assert f'{path}: annotation ids [{other["annotations"][0]["id"]}] are each given to more than one' in message
    assert f"{path}: the file lists the val dataset's classes in the order ['cross', 'ring'," in message
    check_dataset_config(demo_cfg(data_root), splits=('train', 'val'))  # the dataset's own file is fine


def test_train_tool_stops_on_duplicate_ids_before_anything_is_built(capsys, data_root, tmp_path):
    edit_annotations(data_root, 'train', lambda c: c['images'][1].update(id=c['images'][0]['id']))
    work_dir = tmp_path / 'work'
    code, _, err = run_tool(capsys, 'train.py', DEMO_CONFIG, '--work-dir', work_dir, '--cfg-options',
                            *synthetic_coco_cfg_options(data_root))
    assert code == 2 and 'are each given to more than one image' in err and 'Traceback' not in err
    assert not work_dir.exists()


@pytest.mark.parametrize('test_mode', [True, False])
def test_a_skipped_val_box_is_said_to_still_count_in_the_ap(data_root, warnings_logged, test_mode):
    content = edit_annotations(data_root, 'val', lambda c: c['annotations'][0].update(bbox=[0, 0, 0.5, 0.5]))
    DATASETS.build(dict(type='CheckedCocoDataset', data_root=data_root, ann_file='annotations/instances_val.json',
                        data_prefix=dict(img='val/'), metainfo=dict(classes=CLASSES), pipeline=[],
                        test_mode=test_mode)).full_init()
    skipped = [w for w in warnings_logged if f'skipping annotation {content["annotations"][0]["id"]} of ' in w]
    assert len(skipped) == 1 and 'box smaller than 1 pixel' in skipped[0]
    # CocoMetric reads the file itself: in evaluation the box is still ground truth, and the warning says so.
    still_counts = 'an evaluator reading this file, e.g. CocoMetric, still counts it as ground truth'
    assert (still_counts in skipped[0]) == test_mode


# Over the pre-flight's parse limit (64 MB), as COCO's train json (450 MB) is.
_PADDED_SIZE = 65 * 2**20


def _pad_with_a_duplicate_image_id_at_the_end(root, split):
    """Rewrite the split's file padded past the pre-flight's limit, its last entry an image under the id of its
    first (another file name, that exists); returns the file's path and the duplicated id."""
    path = os.path.join(root, f'annotations/instances_{split}.json')
    with open(path) as f:
        content = json.load(f)
    duplicate = dict(content['images'][1], id=content['images'][0]['id'])
    ordered = dict(info=dict(padding=' ' * _PADDED_SIZE), categories=content['categories'],
                   annotations=content['annotations'], images=content['images'] + [duplicate])
    with open(path, 'w') as f:
        json.dump(ordered, f)
    return path, duplicate['id']


def _digest(path):
    with open(path, 'rb') as f:
        return hashlib.sha256(f.read()).hexdigest()


def test_the_dataset_checks_ids_of_a_file_too_big_for_the_pre_flight(data_root):
    path, duplicate_id = _pad_with_a_duplicate_image_id_at_the_end(data_root, 'train')
    assert os.path.getsize(path) > 64 * 2**20
    dataset = DATASETS.build(dict(type='CheckedCocoDataset', data_root=data_root,
                                  ann_file='annotations/instances_train.json', data_prefix=dict(img='train/'),
                                  metainfo=dict(classes=CLASSES), pipeline=[], lazy_init=True))
    with pytest.raises(DatasetConfigError) as info:
        dataset.full_init()
    assert f'{path}: image ids [{duplicate_id}] are each given to more than one image' in str(info.value)


def test_the_dataset_refuses_image_names_that_leave_the_image_folder(data_root):
    outside = ['../../../../etc/passwd', os.path.join(data_root, 'val', 'any.jpg')]
    edit_annotations(data_root, 'train', lambda c: [image.update(file_name=name)
                                                    for image, name in zip(c['images'], outside)])
    message = preflight_error(demo_cfg(data_root))
    assert (f"instances_train.json: 2 of the 8 images it lists are outside the image folder "
            f"{os.path.join(data_root, 'train/')}: {outside!r}; give each file_name relative to that folder") in message
    with pytest.raises(DatasetConfigError, match='are outside the image folder'):
        DATASETS.build(dict(type='CheckedCocoDataset', data_root=data_root, ann_file='annotations/instances_train.json',
                            data_prefix=dict(img='train/'), metainfo=dict(classes=CLASSES), pipeline=[]))


@pytest.mark.slow
def test_train_tool_stops_on_a_duplicate_id_at_the_end_of_a_file_over_64_mb(capsys, data_root, tmp_path):
    path, duplicate_id = _pad_with_a_duplicate_image_id_at_the_end(data_root, 'train')
    digest = _digest(path)
    code, _, err = run_tool(capsys, 'train.py', DEMO_CONFIG, '--work-dir', tmp_path / 'work', '--cfg-options',
                            *synthetic_coco_cfg_options(data_root))
    assert code == 2 and 'Traceback' not in err, err
    assert f'{path}: image ids [{duplicate_id}] are each given to more than one image' in err
    assert _digest(path) == digest
    assert not list((tmp_path / 'work').glob('*.pth'))
