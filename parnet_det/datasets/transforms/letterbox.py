"""The letterbox of Scaled-YOLOv4's COCO test: centred padding to a rectangular multiple of the stride."""
import math

import mmcv
import numpy as np
from mmcv.transforms import BaseTransform

from mmdet.registry import TRANSFORMS


@TRANSFORMS.register_module()
class RectLetterbox(BaseTransform):
    """Pad an image, already resized to the long side ``img_size``, centred to the official test shape.

    For an original image ``h0 x w0`` with long side ``L = max(h0, w0)``, the
    padded shape is, per side ``s`` (``h0`` or ``w0``)::

        ceil(s / L * img_size / stride + pad) * stride

    (Scaled-YOLOv4's rectangular test batches at batch size 1: 640 x 480 ->
    704 x 512, padding 32 left and right, 16 top and bottom), or the data
    info's ``batch_shape`` where there is one (the official batches of
    :class:`~parnet_det.datasets.OfficialBatchShapes`). The padding is split
    as evenly as possible, the odd pixel at the bottom / right, as the
    official ``letterbox`` (``round(d - 0.1)``, ``round(d + 0.1)``). Records
    ``pad_param`` = (top, bottom, left, right), which the head subtracts to
    map boxes back, and shifts ``gt_bboxes`` if present. mmdet's ``Pad``
    pads only at the bottom and right, hence this transform.

    Required keys: ``img``, ``ori_shape``. Modified: ``img``, ``img_shape``,
    ``gt_bboxes`` (optional). Added: ``pad_shape``, ``pad_param``.

    Args:
        img_size (int): The long side the image was resized to. Defaults to 640.
        stride (int): Padded sides are multiples of it. Defaults to 64.
        pad (float): Extra fraction of a stride before rounding up. Defaults to 0.5.
        pad_val (float): Fill value of every channel. Defaults to 114.
    """

    def __init__(self, img_size: int = 640, stride: int = 64, pad: float = 0.5, pad_val: float = 114) -> None:
        if img_size <= 0 or stride <= 0:
            raise ValueError(f'RectLetterbox: img_size and stride must be positive, got {img_size} and {stride}')
        self.img_size = img_size
        self.stride = stride
        self.pad = pad
        self.pad_val = pad_val

    def padded_shape(self, ori_height: int, ori_width: int) -> tuple:
        """(H, W) of the letterboxed image for an original image of that size."""
        long_side = max(ori_height, ori_width)
        return tuple(math.ceil(side / long_side * self.img_size / self.stride + self.pad) * self.stride
                     for side in (ori_height, ori_width))

    def transform(self, results: dict) -> dict:
        img = results['img']
        height, width = img.shape[:2]
        target_h, target_w = results.get('batch_shape') or self.padded_shape(*results['ori_shape'][:2])
        if height > target_h or width > target_w:
            raise ValueError(f'RectLetterbox: a {height}x{width} image does not fit {target_h}x{target_w}; '
                             f'resize it to the long side img_size={self.img_size} first (Resize keep_ratio)')
        top, left = (target_h - height) // 2, (target_w - width) // 2
        bottom, right = target_h - height - top, target_w - width - left
        # One value per channel: OpenCV fills the channels a scalar does not name with 0.
        fill = (self.pad_val, ) * (img.shape[2] if img.ndim == 3 else 1)
        results['img'] = mmcv.impad(img, padding=(left, top, right, bottom), pad_val=fill)
        results['img_shape'] = results['pad_shape'] = (target_h, target_w)
        results['pad_param'] = np.array([top, bottom, left, right], dtype=np.float32)
        if results.get('gt_bboxes') is not None:
            results['gt_bboxes'].translate_([left, top])
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(img_size={self.img_size}, stride={self.stride}, pad={self.pad}, '
                f'pad_val={self.pad_val})')
