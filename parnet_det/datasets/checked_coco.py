"""COCO dataset that reports the annotations it drops."""
from mmengine.logging import print_log

from mmdet.datasets import CocoDataset
from mmdet.registry import DATASETS


def invalid_box_reason(ann: dict, width: int, height: int):
    """Why mmdet's CocoDataset would drop ``ann``, or None if it keeps it."""
    x1, y1, w, h = ann['bbox']
    if w < 1 or h < 1:
        return f'box smaller than 1 pixel (w={w}, h={h})'
    if ann.get('area', 1) <= 0:
        return f'non-positive area {ann.get("area")}'
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
    training run. Every dropped box is logged as a warning naming the image
    file, the annotation id, the box and the reason. Unreadable images are
    handled by :class:`CheckedLoadImageFromFile`.
    """

    def parse_data_info(self, raw_data_info: dict):
        img_info = raw_data_info['raw_img_info']
        for ann in raw_data_info['raw_ann_info']:
            if ann.get('ignore', False) or ann['category_id'] not in self.cat_ids:
                continue
            reason = invalid_box_reason(ann, img_info['width'], img_info['height'])
            if reason is not None:
                print_log(f'{self.ann_file}: skipping annotation {ann.get("id")} of '
                          f'{img_info["file_name"]}: {reason}, bbox={ann["bbox"]}',
                          logger='current', level=30)
        return super().parse_data_info(raw_data_info)
