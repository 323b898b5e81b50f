"""COCO dataset that reports the annotations it drops."""
import math
import numbers
from typing import Container, List, Optional

from mmengine.logging import print_log

from mmdet.datasets import CocoDataset
from mmdet.datasets.api_wrappers import COCO
from mmdet.registry import DATASETS, TASK_UTILS

from .identity import dataset_error, identity_problems


def invalid_box_reason(ann: dict, width: int, height: int, category_ids: Container[int]) -> Optional[str]:
    """Why ``ann`` is unusable (malformed, unknown category, or dropped by mmdet's CocoDataset), or None.

    ``category_ids`` are the ids of the file's ``categories``.
    """
    box = ann.get('bbox')
    if not (isinstance(box, (list, tuple)) and len(box) == 4
            and all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in box)):
        return f'malformed bbox {box!r} (expected [x, y, w, h] numbers)'
    if not all(math.isfinite(v) for v in box):  # json reads NaN and Infinity; every comparison below passes them
        return f'non-finite bbox {box!r} (NaN or infinity)'
    if ann.get('category_id') not in category_ids:
        return f'category_id {ann.get("category_id")!r} is not among the file\'s categories'
    x1, y1, w, h = box
    if w < 1 or h < 1:
        return f'box smaller than 1 pixel (w={w}, h={h})'
    if not isinstance(ann.get('area'), numbers.Real) or not 0 < ann['area'] < math.inf:
        return f'missing, non-positive or non-finite area {ann.get("area")!r}'
    inter_w = max(0, min(x1 + w, width) - max(x1, 0))
    inter_h = max(0, min(y1 + h, height) - max(y1, 0))
    if inter_w * inter_h == 0:
        return f'box outside the {width}x{height} image'
    return None


@DATASETS.register_module()
class CheckedCocoDataset(CocoDataset):
    """mmdet's CocoDataset, but invalid boxes are reported instead of dropped silently.

    Behaviour on bad boxes is skip-with-warning, deliberately: COCO itself has
    a handful of degenerate boxes, and one of them should not stop a multi-day
    training run. Every dropped box is logged as a warning naming the
    annotation file, the image file, the annotation id, the box and the
    reason; malformed boxes and unknown categories are dropped too (mmdet
    would raise a TypeError naming nothing, or drop them silently). In test
    mode the warning says that the evaluator still counts the box. Unreadable
    images are handled by :class:`CheckedLoadImageFromFile`. Ids, image files
    and class order are checked right after the file is parsed (:meth:`COCOAPI`).

    Args:
        batch_shapes_cfg (dict, optional): A policy that reorders the data list and gives each image
            a ``batch_shape`` (:class:`~parnet_det.datasets.OfficialBatchShapes`: the official test's
            batches). Defaults to None (the file's order, each image its own shape).
        **kwargs: mmdet's ``CocoDataset``'s.
    """

    def __init__(self, *args, batch_shapes_cfg: Optional[dict] = None, **kwargs) -> None:
        self.batch_shapes = TASK_UTILS.build(batch_shapes_cfg) if batch_shapes_cfg else None
        super().__init__(*args, **kwargs)

    def filter_data(self) -> List[dict]:
        # The last step on the data list before it is serialised (BaseDataset.full_init): where mmyolo's datasets
        # apply their batch shapes too.
        data_list = super().filter_data()
        return self.batch_shapes(data_list) if self.batch_shapes else data_list

    def COCOAPI(self, annotation_file: str) -> COCO:  # the name mmdet's CocoDataset.load_data_list parses with
        """mmdet's parse of the annotation file, then the identity checks on what it read, whatever the file's
        size (the pre-flight parses only small files) and without a second parse: duplicate ids, image files
        outside their folder or missing, classes in another order (:func:`~.identity.identity_problems`).
        Raises :class:`~.identity.DatasetConfigError` before any sample is made, also for a file that is not
        JSON (cut short past the pre-flight's parse limit: its tail check cannot see a cut after a ``}``)."""
        try:
            coco = COCO(annotation_file)
        except ValueError as err:  # json's JSONDecodeError
            raise dataset_error([f'annotation file {annotation_file} is not valid JSON ({err}): cut short by an '
                                 'interrupted download or copy? fetch it again']) from err
        problems = identity_problems(self.ann_file, coco.dataset, self.data_prefix.get('img'),
                                     self.metainfo.get('classes') or (), 'test' if self.test_mode else 'train',
                                     self.data_root)
        if problems:
            raise dataset_error(problems)
        return coco

    @property
    def _still_counted(self) -> str:
        # CocoMetric reads the annotation file itself, not this dataset: a box skipped here stays ground truth.
        return (' (skipped from the inputs only: an evaluator reading this file, e.g. CocoMetric, still counts it '
                'as ground truth; fix or remove it in the file)') if self.test_mode else ''

    def parse_data_info(self, raw_data_info: dict):
        img_info = raw_data_info['raw_img_info']
        kept = []
        for ann in raw_data_info['raw_ann_info']:
            reason = None if ann.get('ignore', False) else invalid_box_reason(
                ann, img_info['width'], img_info['height'], self.coco.cats)
            if reason is None:
                kept.append(ann)
            else:
                print_log(f'{self.ann_file}: skipping annotation {ann.get("id")} of '
                          f'{img_info["file_name"]}: {reason}, bbox={ann.get("bbox")!r}' + self._still_counted,
                          logger='current', level=30)
        return super().parse_data_info(dict(raw_data_info, raw_ann_info=kept))
