"""Pre-flight checks of classes, heads and boxes against the annotation files (generated COCO data)."""
import json
import os

from mmengine.config import Config

from mmdet.registry import DATASETS

from parnet_det.datasets import check_dataset_config, synthetic_coco_cfg_options

from ..helpers import run_tool
from .helpers import preflight_error

DEMO_CONFIG = 'configs/demo/yolo_parnet_tiny_synthetic.py'
COCO_CONFIG = 'configs/yolo_parnet_xl_coco.py'


def edit_annotations(root, split, edit):
    path = os.path.join(root, f'annotations/instances_{split}.json')
    with open(path) as f:
        content = json.load(f)
    edit(content)
    with open(path, 'w') as f:
        json.dump(content, f)
    return content


def demo_cfg(root):
    cfg = Config.fromfile(DEMO_CONFIG)
    cfg.merge_from_dict(dict(option.split('=', 1) for option in synthetic_coco_cfg_options(root)))
    return cfg


def test_the_generated_data_passes(data_root):
    check_dataset_config(demo_cfg(data_root), splits=('train', 'val', 'test'))


def test_a_coco_config_on_other_categories_stops_with_the_fix(data_root):
    cfg = Config.fromfile(COCO_CONFIG)
    cfg.train_dataloader.dataset.dataset.update(data_root=data_root + '/', ann_file='annotations/instances_train.json',
                                                data_prefix=dict(img='train/'))
    cfg.val_dataloader.dataset.update(data_root=data_root + '/', ann_file='annotations/instances_val.json',
                                      data_prefix=dict(img='val/'))
    cfg.val_evaluator.ann_file = os.path.join(data_root, 'annotations/instances_val.json')
    message = preflight_error(cfg)
    assert '80 of the 80 classes of the train dataset are not categories of this file' in message
    assert "metainfo=dict(classes=('circle', 'rectangle', 'triangle', 'ring', 'cross'))" in message
    assert 'num_classes=5 on the head' in message
    assert 'cocodataset.org' not in message  # the data is there; downloading COCO is not the fix


def test_a_head_with_more_classes_than_the_dataset_stops(data_root):
    cfg = demo_cfg(data_root)
    cfg.model.bbox_head.num_classes = 80
    message = preflight_error(cfg)
    assert ('model.bbox_head.num_classes=80 but the train dataset has 5 classes '
            "['circle', 'rectangle', 'triangle', 'ring', 'cross']; set model.bbox_head.num_classes=5") in message


def test_a_class_differing_in_case_is_named(data_root):
    edit_annotations(data_root, 'train', lambda c: c['categories'][0].update(name='Circle'))
    message = preflight_error(demo_cfg(data_root))
    assert "instances_train.json: 1 of the 5 classes of the train dataset are not categories" in message
    assert "differing only in case: 'circle' (the file says 'Circle')" in message


def test_a_split_without_annotations_stops(data_root):
    edit_annotations(data_root, 'val', lambda c: c.update(annotations=[]))
    message = preflight_error(demo_cfg(data_root))
    assert 'instances_val.json has no usable box of the val dataset\'s classes (0 annotations' in message


def test_unknown_categories_and_malformed_boxes_are_reported_and_skipped(data_root, warnings_logged, mmdet_scope):

    def break_two(content):
        content['annotations'][0]['category_id'] = 99
        content['annotations'][1]['bbox'] = 'oops'

    content = edit_annotations(data_root, 'train', break_two)
    check_dataset_config(demo_cfg(data_root), splits=('train', ))  # other boxes remain usable
    dataset = DATASETS.build(dict(
        type='CheckedCocoDataset', data_root=data_root, ann_file='annotations/instances_train.json',
        data_prefix=dict(img='train/'), metainfo=dict(classes=('circle', 'rectangle', 'triangle', 'ring', 'cross')),
        pipeline=[]))
    dataset.full_init()
    first, second = content['annotations'][:2]
    assert any(f'skipping annotation {first["id"]} of ' in w and "category_id 99 is not among the file's categories"
               in w for w in warnings_logged), warnings_logged
    assert any(f'skipping annotation {second["id"]} of ' in w and "malformed bbox 'oops'" in w
               for w in warnings_logged), warnings_logged
    boxes = sum(len(dataset.get_data_info(i)['instances']) for i in range(len(dataset)))
    assert boxes == len(content['annotations']) - 2


def test_train_tool_stops_before_creating_the_work_dir(data_root, tmp_path, capsys):
    work_dir = tmp_path / 'work'
    code, _, err = run_tool(capsys, 'train.py', DEMO_CONFIG, '--work-dir', work_dir, '--cfg-options',
                            *synthetic_coco_cfg_options(data_root), 'model.bbox_head.num_classes=80')
    assert code == 2 and '\nerror: the dataset of this config is not usable' in '\n' + err
    assert 'set model.bbox_head.num_classes=5' in err
    assert not work_dir.exists()
