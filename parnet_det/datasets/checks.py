"""Fail fast, with instructions, when a config's dataset is missing or malformed."""
import json
import os.path as osp
from typing import Iterator, List, Sequence

# Parse annotation files fully only up to this size; COCO's train json
# (~450 MB) is parsed once by the dataset itself, so for it we only check
# that it is there and looks like JSON.
_FULL_PARSE_LIMIT = 64 * 2**20

HOW_TO_GET_DATA = (
    'For MS-COCO 2017, download train2017/, val2017/ and annotations_trainval2017 from '
    'https://cocodataset.org/#download and unpack them to data/coco/ (data/coco/train2017/, data/coco/val2017/, '
    'data/coco/annotations/instances_{train,val}2017.json), or point the config elsewhere with '
    '--cfg-options. To run without COCO, use generated data: '
    'python tools/dataset/generate_synthetic_coco.py data/synthetic_coco && '
    'python tools/train.py configs/demo/yolo_parnet_tiny_synthetic.py')


class DatasetConfigError(FileNotFoundError):
    """The dataset a config points at is missing or malformed."""


def _leaf_datasets(dataset_cfg) -> Iterator[dict]:
    """The datasets that read files, through wrappers (MultiImageMixDataset, Repeat, Concat...)."""
    if 'datasets' in dataset_cfg:
        for sub in dataset_cfg['datasets']:
            yield from _leaf_datasets(sub)
    elif 'dataset' in dataset_cfg:
        yield from _leaf_datasets(dataset_cfg['dataset'])
    else:
        yield dataset_cfg


def _check_annotation_file(path: str) -> List[str]:
    if not osp.isfile(path):
        return [f'annotation file {path} does not exist']
    size = osp.getsize(path)
    with open(path, 'rb') as f:
        head = f.read(64).lstrip()
    if size == 0 or not head.startswith(b'{'):
        return [f'annotation file {path} is not a COCO json (empty or not a JSON object)']
    if size > _FULL_PARSE_LIMIT:
        return []
    try:
        with open(path) as f:
            content = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        return [f'annotation file {path} is not valid JSON ({err})']
    missing = [k for k in ('images', 'annotations', 'categories') if k not in content]
    return [f'annotation file {path} lacks the COCO keys {missing}'] if missing else []


def check_dataset_config(cfg, splits: Sequence[str] = ('train', 'val', 'test')) -> None:
    """Check every file a config's dataloaders and COCO evaluators need, before any work starts.

    Raises :class:`DatasetConfigError` listing every problem and how to get
    the data (or run on generated data instead).
    """
    problems = []
    for split in splits:
        loader = cfg.get(f'{split}_dataloader')
        if not loader:
            continue
        for dataset in _leaf_datasets(loader['dataset']):
            root = dataset.get('data_root') or ''
            if dataset.get('ann_file'):
                problems += _check_annotation_file(osp.join(root, dataset['ann_file']))
            image_dir = osp.join(root, (dataset.get('data_prefix') or {}).get('img', ''))
            if not osp.isdir(image_dir):
                problems.append(f'image directory {image_dir} does not exist ({split} split)')
        evaluator = cfg.get(f'{split}_evaluator')
        for metric in (evaluator if isinstance(evaluator, (list, tuple)) else [evaluator or {}]):
            if metric.get('ann_file'):
                problems += _check_annotation_file(metric['ann_file'])
    problems = list(dict.fromkeys(problems))  # each problem once, in order
    if problems:
        raise DatasetConfigError('the dataset of this config is not usable:\n  - ' + '\n  - '.join(problems)
                                 + '\n' + HOW_TO_GET_DATA)
