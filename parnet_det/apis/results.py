"""Detections as files: COCO's results format, with the dataset's ids where the inputs are a COCO split.

``tools/infer.py`` writes each image's detections as one line of
``detections.jsonl`` as soon as it is done (a crash keeps every finished
image), and ``detections.json`` (the list of all, COCO's results format) from
those lines at the end. Both are strict JSON (:func:`~parnet_det.utils.fileio.strict_json`).
"""
import json
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from mmengine.config import Config
from mmengine.structures import InstanceData

from ..utils.config import leaf_datasets
from ..utils.fileio import atomic_write, strict_json


def shown_detections(instances: InstanceData, score_thr: float) -> Tuple[InstanceData, int]:
    """The detections scoring at least ``score_thr`` with finite boxes and scores (a diverged model
    gives infinite or NaN boxes, which no JSON parser, painter or evaluator takes); and how many
    scoring detections were dropped as not finite."""
    instances = instances.cpu()
    scoring = instances[~(instances.scores < score_thr)]  # NaN scores stay, to be counted below
    finite = torch.isfinite(scoring.bboxes).all(dim=1) & torch.isfinite(scoring.scores)
    return scoring[finite], int((~finite).sum())


def coco_records(instances: InstanceData, image: dict, classes: Sequence[str],
                 category_ids: Optional[Sequence[int]] = None) -> List[dict]:
    """Detections in COCO's results format (``bbox`` as x, y, w, h), each with ``image``'s keys
    (``image_id``, ``file_name``, ``frame`` of a video), ``category_id`` (``category_ids[label]``, else the
    model's 0-based label) and ``category`` (the class name)."""
    records = []
    for (x1, y1, x2, y2), score, label in zip(instances.bboxes.tolist(), instances.scores.tolist(),
                                              instances.labels.tolist()):
        name = classes[label] if label < len(classes) else f'class {label}'
        category_id = category_ids[label] if category_ids is not None else label
        records.append(dict(image, category_id=category_id, category=name, bbox=[x1, y1, x2 - x1, y2 - y1],
                            score=score))
    return records


class CocoIds:
    """The image and category ids of a COCO annotation file, so that pycocotools' ``loadRes`` and
    ``COCOeval`` take the detections against it.

    An input image is the annotation file's image whose ``file_name`` is the
    longest trailing part of the input's path (``val/000001.jpg`` matches
    ``000001.jpg`` and ``val/000001.jpg``); a class is the category of its name.

    Args:
        ann_file (str): The annotation file.
    """

    def __init__(self, ann_file: str) -> None:
        if not osp.isfile(ann_file):
            raise FileNotFoundError(f'annotation file {ann_file} does not exist')
        try:
            with open(ann_file) as file:
                coco = json.load(file)
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ValueError(f'annotation file {ann_file} is not JSON ({err}); give a COCO annotation file') from None
        if not isinstance(coco, dict):
            raise ValueError(f'annotation file {ann_file} is not a COCO json (not a JSON object)')
        self.ann_file = ann_file
        self.images = {osp.normpath(image['file_name']): image['id'] for image in coco.get('images', [])}
        self.categories = {category['name']: category['id'] for category in coco.get('categories', [])}

    def image_id(self, path: str) -> Optional[int]:
        """The id of the image at ``path``, or None if the annotation file does not list it."""
        parts = osp.realpath(path).split(os.sep)
        return next((self.images[key] for key in (osp.join(*parts[-n:]) for n in range(len(parts) - 1, 0, -1))
                     if key in self.images), None)

    def image_ids(self, paths: Sequence[str]) -> Dict[str, int]:
        """Each path's image id; ValueError naming the paths that are not images of the file (videos included)."""
        ids = {path: self.image_id(path) for path in paths}
        missing = [path for path, image_id in ids.items() if image_id is None]
        if missing:
            raise ValueError(f'{len(missing)} input(s) are not images of {self.ann_file} (e.g. '
                             f'{", ".join(missing[:3])}): give only its images, or leave out --ann-file')
        return ids

    def category_ids(self, classes: Sequence[str]) -> List[int]:
        """The category id of each class (by label); ValueError naming the classes the file lacks."""
        missing = [name for name in classes if name not in self.categories]
        if missing:
            raise ValueError(f'the classes {missing} of the model are not categories of {self.ann_file} '
                             f'({sorted(self.categories)}): give the annotation file of its dataset')
        return [self.categories[name] for name in classes]


def config_split_ann_file(cfg: Config, paths: Sequence[str]) -> Optional[str]:
    """The annotation file of the config's dataset (test, val or train) whose image folder holds every
    one of ``paths`` (files or folders), if there is one."""
    inputs = [osp.realpath(path) for path in paths]
    for split in ('test_dataloader', 'val_dataloader', 'train_dataloader'):
        if not cfg.get(split) or 'dataset' not in cfg[split]:
            continue
        for dataset in leaf_datasets(cfg[split]['dataset']):
            data_root = dataset.get('data_root') or ''
            image_dir = (dataset.get('data_prefix') or {}).get('img')
            ann_file = osp.join(data_root, dataset.get('ann_file') or '')
            if image_dir is None or not osp.isfile(ann_file):
                continue
            folder = osp.realpath(osp.join(data_root, image_dir))
            if all(osp.commonpath([folder, path]) == folder for path in inputs):
                return ann_file
    return None


class DetectionLog:
    """``detections.jsonl`` (one line per image or frame, written and flushed as it is done) and, at
    :meth:`close`, ``detections.json`` (all detections, one list) assembled from it, atomically.
    Neither ever replaces an existing file.

    Args:
        out_dir (str): Where both go (created if missing).
    """

    def __init__(self, out_dir: str) -> None:
        os.makedirs(out_dir, exist_ok=True)
        self.lines_path = osp.join(out_dir, 'detections.jsonl')
        self.json_path = osp.join(out_dir, 'detections.json')
        self.file = open(self.lines_path, 'x')

    def add(self, image: dict, records: List[dict]) -> None:
        """One image's (or frame's) detections, ``image`` its keys (``image_id``, ``file_name``, ...)."""
        self.file.write(strict_json(dict(image, detections=records)) + '\n')
        self.file.flush()

    def close(self) -> str:
        """Write ``detections.json`` from the lines; returns its path."""
        self.file.close()
        with open(self.lines_path) as lines, atomic_write(self.json_path, 'w', overwrite=False) as out:
            out.write('[')
            separator = ''
            for line in lines:
                for record in json.loads(line)['detections']:
                    out.write(separator + strict_json(record))
                    separator = ', '
            out.write(']')
        return self.json_path
