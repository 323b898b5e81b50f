"""Fail fast, with instructions, when a config's dataset is missing or malformed."""
import functools
import json
import os.path as osp
from typing import Iterator, List, Optional, Sequence, Tuple

from mmdet.registry import DATASETS

from ..utils.config import dataset_image_dir, leaf_datasets
from .checked_coco import invalid_box_reason
from .identity import dataset_error, identity_problems, short_list
from .image_folder_checks import (
    HOW_TO_GET_IMAGENET,
    image_folder_classes,
    image_folder_dataset_type,
    image_folder_problems,
)

# Parse annotation files here only up to this size; COCO's train json (~450 MB) is parsed once, by
# the dataset, which then runs the identity checks on it (checked_coco.py); its boxes are not checked here.
_FULL_PARSE_LIMIT = 64 * 2**20

HOW_TO_GET_DATA = (
    'For MS-COCO 2017, download train2017/, val2017/ and annotations_trainval2017 from '
    'https://cocodataset.org/#download and unpack them to data/coco/ (data/coco/train2017/, data/coco/val2017/, '
    'data/coco/annotations/instances_{train,val}2017.json), or point the config elsewhere with '
    '--cfg-options. To run without COCO, use generated data: '
    'python tools/dataset/generate_synthetic_coco.py data/synthetic_coco && '
    'python tools/train.py configs/demo/yolo_parnet_tiny_synthetic.py')


# Parts of a model config whose num_classes is not the dataset's (an RPN has one class).
_NOT_DATASET_CLASSES = ('rpn_head', 'backbone', 'neck', 'train_cfg', 'test_cfg', 'data_preprocessor')


def _read_annotation_file(path: str) -> Tuple[Optional[dict], List[str]]:
    """The parsed COCO json (None if too big to parse here, or unusable) and its problems."""
    if not osp.isfile(path):
        return None, [f'annotation file {path} does not exist']
    size = osp.getsize(path)
    with open(path, 'rb') as f:
        head = f.read(64).lstrip()
    if size == 0 or not head.startswith(b'{'):
        return None, [f'annotation file {path} is not a COCO json (empty or not a JSON object)']
    if size > _FULL_PARSE_LIMIT:
        with open(path, 'rb') as f:  # not parsed here: a file cut short (an interrupted copy) still shows at its end
            f.seek(max(size - 64, 0))
            tail = f.read().rstrip()
        if not tail.endswith(b'}'):
            return None, [f'annotation file {path} is cut short: its {size} bytes end inside the JSON (an '
                          'interrupted download or copy); fetch it again']
        return None, []
    try:
        with open(path) as f:
            content = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        return None, [f'annotation file {path} is not valid JSON ({err})']
    missing = [k for k in ('images', 'annotations', 'categories') if k not in content]
    if missing:
        return None, [f'annotation file {path} lacks the COCO keys {missing}']
    return content, []


def dataset_classes(dataset_cfg) -> Tuple[str, ...]:
    """The classes a dataset config uses: its ``metainfo``, else its dataset class's (COCO's 80 for CocoDataset)."""
    classes = (dataset_cfg.get('metainfo') or {}).get('classes')
    if classes is None:
        dataset_type = DATASETS.get(dataset_cfg.get('type', 'CocoDataset'))
        classes = getattr(dataset_type, 'METAINFO', {}).get('classes', ())
    return tuple(classes)


def head_num_classes(model_cfg, prefix: str = 'model') -> Iterator[Tuple[str, int]]:
    """``(key, num_classes)`` of every head that predicts the dataset's classes (an RPN's one class excluded)."""
    items = model_cfg.items() if isinstance(model_cfg, dict) else enumerate(model_cfg)
    for key, value in items:
        if key == 'num_classes' and isinstance(value, int):
            yield f'{prefix}.{key}', value
        elif isinstance(value, (dict, list, tuple)) and key not in _NOT_DATASET_CLASSES:
            yield from head_num_classes(value, f'{prefix}.{key}')


def _check_num_classes(model_cfg, classes: Sequence[str], split: str) -> List[str]:
    return [f'{key}={num} but the {split} dataset has {len(classes)} classes {short_list(classes)}; '
            f'set {key}={len(classes)} (or metainfo=dict(classes=...) on the dataset)'
            for key, num in head_num_classes(model_cfg or {}) if num != len(classes)]


def _check_categories(path: str, content: dict, classes: Sequence[str], split: str) -> List[str]:
    """Every class of the config must be a category of the file, by exact name."""
    names = [c.get('name') for c in content['categories']]
    missing = [c for c in classes if c not in names]
    if not missing:
        return []
    by_lower = {str(n).lower(): n for n in names}
    case = [f'{c!r} (the file says {by_lower[c.lower()]!r})' for c in missing if c.lower() in by_lower]
    return [f'{path}: {len(missing)} of the {len(classes)} classes of the {split} dataset are not categories of '
            f'this file: {short_list(missing)}' + (f'; differing only in case: {", ".join(case)}' if case else '')
            + f'. The file\'s categories are {short_list(names)}: set metainfo=dict(classes={tuple(names)!r}) on the '
            f'dataset and num_classes={len(names)} on the head, or fix the file']


def _check_boxes(path: str, content: dict, classes: Sequence[str], split: str) -> List[str]:
    """The file must hold at least one usable box of the config's classes."""
    category_ids = {c['id']: c.get('name') for c in content['categories']}
    images = {i['id']: i for i in content['images']}
    usable = sum(1 for ann in content['annotations']
                 if not ann.get('iscrowd') and ann.get('image_id') in images
                 and invalid_box_reason(ann, images[ann['image_id']]['width'], images[ann['image_id']]['height'],
                                        category_ids) is None
                 and category_ids[ann['category_id']] in classes)
    if usable:
        return []
    return [f'{path} has no usable box of the {split} dataset\'s classes ({len(content["annotations"])} annotations, '
            'none valid and of these classes); training or evaluating on it would measure nothing']


def check_dataset_config(cfg, splits: Sequence[str] = ('train', 'val', 'test')) -> None:
    """Check every file a config's dataloaders and COCO evaluators need, before any work starts.

    Besides the files being there and being COCO json: image ids and
    annotation ids are unique in each file (and the evaluator's), every image a
    dataset's file lists is a file in its image directory, the classes of each
    dataset are categories of its annotation files and of its evaluator's
    (names, case differences named) and in the same order, the heads'
    ``num_classes`` equal their number, and each annotation file has at least
    one usable box of them. Image file names must stay inside their folder.
    Files over 64 MB (COCO's train json) are only checked to be JSON here, not
    parsed twice: :class:`CheckedCocoDataset` runs the same identity checks on
    them right after mmdet's own parse (:mod:`.identity`), before the first
    iteration.
    The datasets of the ImageNet configs (mmpretrain's image folders) are checked
    by :mod:`.image_folder_checks` instead: folders, class folders or the listed
    files, labels, the head's ``num_classes``.
    Raises :class:`~.identity.DatasetConfigError` listing every problem and how to get
    the data (or run on generated data instead).
    """
    read = functools.lru_cache()(_read_annotation_file)  # a val file is often also the evaluator's
    problems, mismatches = [], []  # missing or broken files; classes and boxes
    how_to_fix = HOW_TO_GET_DATA
    for split in splits:
        loader = cfg.get(f'{split}_dataloader')
        if not loader:
            continue
        for dataset in leaf_datasets(loader['dataset']):
            folder_type = image_folder_dataset_type(dataset)  # an ImageNet config's (mmpretrain's) dataset
            classes = image_folder_classes(dataset, folder_type) if folder_type else dataset_classes(dataset)
            if classes:  # an unknown dataset type has none to compare
                mismatches += _check_num_classes(cfg.get('model'), classes, split)
            if folder_type is not None:
                missing, wrong = image_folder_problems(dataset, folder_type, classes, split)
                problems, mismatches, how_to_fix = problems + missing, mismatches + wrong, HOW_TO_GET_IMAGENET
                continue
            image_dir = dataset_image_dir(dataset)
            if not osp.isdir(image_dir):
                problems.append(f'image directory {image_dir} does not exist ({split} split)')
            if dataset.get('ann_file'):
                path = osp.join(dataset.get('data_root') or '', dataset['ann_file'])
                content, found = read(path)
                problems += found
                if content is not None:
                    mismatches += identity_problems(path, content, image_dir, classes, split,
                                                    dataset.get('data_root'))
                if content is not None and classes:
                    mismatches += (_check_categories(path, content, classes, split)
                                   or _check_boxes(path, content, classes, split))
        evaluator = cfg.get(f'{split}_evaluator')
        for metric in (evaluator if isinstance(evaluator, (list, tuple)) else [evaluator or {}]):
            if metric.get('ann_file'):
                content, found = read(metric['ann_file'])
                problems += found
                if content is not None:
                    mismatches += identity_problems(metric['ann_file'], content, None, classes, split)
                if content is not None and classes:
                    mismatches += _check_categories(metric['ann_file'], content, classes, split)
    if problems or mismatches:
        raise dataset_error(problems + mismatches, how_to_fix if problems else '')
