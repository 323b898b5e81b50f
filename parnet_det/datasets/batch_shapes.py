"""Scaled-YOLOv4's rectangular test batches: images sorted by aspect ratio, one letterbox shape per batch."""
import math
import os.path as osp
from typing import List

import numpy as np

from mmdet.registry import TASK_UTILS


@TASK_UTILS.register_module()
class OfficialBatchShapes:
    """Order a test data list as the official test's dataloader and give each image its batch's shape.

    As Scaled-YOLOv4's ``LoadImagesAndLabels(rect=True)`` (test.py, batch ``n``): the images in file-name
    order, ``ar = h / w`` (float64), reordered by ``ar.argsort()`` (numpy's default sort, ties included);
    for batch ``b`` of ``n`` consecutive images, with ``lo, hi`` the least and greatest ``ar`` in it::

        shape = (hi, 1) if hi < 1;  (1, 1 / lo) if lo > 1;  (1, 1) otherwise      (h, w factors)
        batch_shape = ceil(shape * img_size / stride + pad) * stride

    so every image of a batch has the shape of its squarest image, and a batch of wide and tall
    images is ``img_size + stride`` square (704 x 704 at 640 / 64). Each data info gets
    ``batch_shape`` (H, W), which :class:`~parnet_det.datasets.RectLetterbox` letterboxes to.
    mmyolo's ``BatchShapePolicy`` is the ecosystem's form of this; it sorts without the file-name
    order first, which decides the ties. Evaluate with the dataloader's ``batch_size = n`` and no
    shuffling, so that the batches are these.

    Args:
        batch_size (int): ``n``. Defaults to 8 (the official README's test).
        img_size (int): The long side. Defaults to 640.
        stride (int): Defaults to 64 (32 in the 2020-11 code).
        pad (float): Defaults to 0.5.
    """

    def __init__(self, batch_size: int = 8, img_size: int = 640, stride: int = 64, pad: float = 0.5) -> None:
        if batch_size < 1 or img_size < 1 or stride < 1:
            raise ValueError(f'OfficialBatchShapes: batch_size, img_size and stride must be >= 1, got {batch_size}, '
                             f'{img_size}, {stride}')
        self.batch_size, self.img_size, self.stride, self.pad = batch_size, img_size, stride, pad

    def batch_shape(self, ratios: np.ndarray) -> tuple:
        """(H, W) of a batch whose images have the aspect ratios ``ratios`` (h / w)."""
        low, high = ratios.min(), ratios.max()
        factors = (high, 1.0) if high < 1 else (1.0, 1 / low) if low > 1 else (1.0, 1.0)
        return tuple(int(math.ceil(f * self.img_size / self.stride + self.pad)) * self.stride for f in factors)

    def __call__(self, data_list: List[dict]) -> List[dict]:
        by_name = sorted(data_list, key=lambda info: osp.basename(info['img_path']))
        ratios = np.array([info['height'] / info['width'] for info in by_name], dtype=np.float64)
        order = ratios.argsort()
        ordered = [by_name[i] for i in order]
        for start in range(0, len(ordered), self.batch_size):
            shape = self.batch_shape(ratios[order[start:start + self.batch_size]])
            for info in ordered[start:start + self.batch_size]:
                info['batch_shape'] = shape
        return ordered
