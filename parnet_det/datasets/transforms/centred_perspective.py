"""Scaled-YOLOv4's random_perspective: the mosaic warped about its centre and cut to the output, then box_candidates."""
import math
from typing import Tuple

import cv2
import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmcv.transforms.utils import cache_randomness

from mmdet.registry import TRANSFORMS
from mmdet.structures.bbox import autocast_box_type

from .box_candidates import box_candidates


@TRANSFORMS.register_module()
class CentredRandomPerspective(BaseTransform):
    """Random perspective about the input's centre, to an output cut by ``border``; boxes filtered after it.

    An ``H x W`` input (the ``2s x 2s`` mosaic) becomes an ``h x w = (H + 2 border_y) x (W + 2 border_x)``
    output (``border = (-s/2, -s/2)``: ``s x s``); input pixel ``p`` goes to ``M p`` (homogeneous), with::

        M = T S R P C,
        C = [[1, 0, -W/2], [0, 1, -H/2], [0, 0, 1]]            the input's centre to the origin,
        P = [[1, 0, 0], [0, 1, 0], [p_x, p_y, 1]]              p_x, p_y ~ U(-perspective, perspective),
        R = [[f cos a, f sin a, 0], [-f sin a, f cos a, 0], [0, 0, 1]]   a ~ U(-degrees, degrees) (degrees),
                                                                  f ~ U(1 - scale, 1 + scale),
        S = [[1, tan g_x, 0], [tan g_y, 1, 0], [0, 0, 1]]      g_x, g_y ~ U(-shear, shear) (degrees),
        T = [[1, 0, t_x w], [0, 1, t_y h], [0, 0, 1]]          t_x, t_y ~ U(0.5 - translate, 0.5 + translate),

    drawn from numpy's global generator in the order p_x, p_y, a, f, g_x, g_y, t_x, t_y. The input's centre
    lands at ``(t_x w, t_y h)``, the output's centre +- ``translate``: where the four mosaic tiles meet
    is seen at every ``f``. The image is warped by ``cv2.warpAffine`` (``cv2.warpPerspective`` when
    ``perspective > 0``), bilinear, filled with ``pad_val``. Each box's 4 corners go through ``M``; the
    new box is their bounding box clipped to the output, kept where :func:`box_candidates` says so
    (compared with the box before the warp scaled by ``f``).

    mmdet's ``RandomAffine`` differs: its matrix has no ``C`` (it scales about the canvas origin, so at
    ``f = 1`` it keeps the mosaic's top-left ``s x s``), and mmdet 3.3's has no area or aspect filter.

    Required keys: ``img``; ``gt_bboxes`` (HorizontalBoxes), ``gt_bboxes_labels``, ``gt_ignore_flags``
    (optional). Modified: ``img``, ``img_shape``, the ``gt_*`` keys. Added or composed: ``homography_matrix``.

    Args:
        degrees, translate, scale, shear, perspective (float): The recipe's hyper-parameters, defaults
            those of its 2021-05 ``hyp.scratch.yaml``: 0.0, 0.1, 0.9, 0.0, 0.0.
        border (tuple[int, int]): ``(border_x, border_y)``, mmdet's order. Defaults to (-320, -320).
        pad_val (float): Fill of every channel. Defaults to 114.
        min_size, min_area_ratio, max_aspect_ratio (float): :func:`box_candidates`' thresholds.
            Defaults to 2.0, 0.1, 20.0.
    """

    def __init__(self, degrees: float = 0.0, translate: float = 0.1, scale: float = 0.9, shear: float = 0.0,
                 perspective: float = 0.0, border: Tuple[int, int] = (-320, -320), pad_val: float = 114,
                 min_size: float = 2.0, min_area_ratio: float = 0.1, max_aspect_ratio: float = 20.0) -> None:
        name = self.__class__.__name__
        for arg, value in (('degrees', degrees), ('translate', translate), ('shear', shear),
                           ('perspective', perspective), ('min_size', min_size), ('min_area_ratio', min_area_ratio)):
            if value < 0:
                raise ValueError(f'{name}: {arg} must be >= 0, got {value}')
        if not 0 <= scale < 1:
            raise ValueError(f'{name}: scale must be in [0, 1) (the factor is drawn from [1 - scale, 1 + scale]), '
                             f'got {scale}')
        if max_aspect_ratio <= 1:
            raise ValueError(f'{name}: max_aspect_ratio must be > 1, got {max_aspect_ratio}')
        if len(border) != 2:
            raise ValueError(f'{name}: border is (border_x, border_y), got {border}')
        self.degrees, self.translate, self.scale, self.shear = degrees, translate, scale, shear
        self.perspective, self.border, self.pad_val = perspective, tuple(border), pad_val
        self.min_size, self.min_area_ratio, self.max_aspect_ratio = min_size, min_area_ratio, max_aspect_ratio

    @cache_randomness
    def _draw(self) -> Tuple[float, ...]:
        """(p_x, p_y, a, f, g_x, g_y, t_x, t_y), in the documented order."""
        uniform = np.random.uniform
        p_x, p_y = uniform(-self.perspective, self.perspective), uniform(-self.perspective, self.perspective)
        angle, factor = uniform(-self.degrees, self.degrees), uniform(1 - self.scale, 1 + self.scale)
        g_x, g_y = uniform(-self.shear, self.shear), uniform(-self.shear, self.shear)
        t_x = uniform(0.5 - self.translate, 0.5 + self.translate)
        t_y = uniform(0.5 - self.translate, 0.5 + self.translate)
        return p_x, p_y, angle, factor, g_x, g_y, t_x, t_y

    @staticmethod
    def matrix(draws: Tuple[float, ...], in_hw: Tuple[int, int], out_hw: Tuple[int, int]) -> np.ndarray:
        """``M = T S R P C`` (3 x 3, float64) for the drawn values, an ``in_hw`` input and an ``out_hw`` output."""
        p_x, p_y, angle, factor, g_x, g_y, t_x, t_y = draws
        centre = np.array([[1, 0, -in_hw[1] / 2], [0, 1, -in_hw[0] / 2], [0, 0, 1]])
        perspective = np.array([[1, 0, 0], [0, 1, 0], [p_x, p_y, 1]])
        cos, sin = factor * math.cos(math.radians(angle)), factor * math.sin(math.radians(angle))
        rotate_scale = np.array([[cos, sin, 0], [-sin, cos, 0], [0, 0, 1]])
        shear = np.array([[1, math.tan(math.radians(g_x)), 0], [math.tan(math.radians(g_y)), 1, 0], [0, 0, 1]])
        translate = np.array([[1, 0, t_x * out_hw[1]], [0, 1, t_y * out_hw[0]], [0, 0, 1]])
        return translate @ shear @ rotate_scale @ perspective @ centre

    @autocast_box_type()
    def transform(self, results: dict) -> dict:
        img = results['img']
        in_hw = img.shape[:2]
        out_hw = (in_hw[0] + 2 * self.border[1], in_hw[1] + 2 * self.border[0])
        if min(out_hw) <= 0:
            raise ValueError(f'{self.__class__.__name__}: border {self.border} leaves nothing of a '
                             f'{in_hw[0]}x{in_hw[1]} image')
        draws = self._draw()
        matrix = self.matrix(draws, in_hw, out_hw)
        fill = (self.pad_val, ) * (img.shape[2] if img.ndim == 3 else 1)
        size = (out_hw[1], out_hw[0])
        if self.perspective > 0:
            results['img'] = cv2.warpPerspective(img, matrix, dsize=size, borderValue=fill)
        else:
            results['img'] = cv2.warpAffine(img, matrix[:2], dsize=size, borderValue=fill)
        results['img_shape'] = out_hw
        previous = results.get('homography_matrix')
        results['homography_matrix'] = matrix if previous is None else matrix @ previous
        bboxes = results.get('gt_bboxes')
        if bboxes is not None:
            before_wh = torch.stack([bboxes.widths, bboxes.heights], dim=-1)
            bboxes.project_(matrix)
            bboxes.clip_(out_hw)
            keep = box_candidates(before_wh, torch.stack([bboxes.widths, bboxes.heights], dim=-1), draws[3],
                                  self.min_size, self.min_area_ratio, self.max_aspect_ratio).numpy()
            results['gt_bboxes'] = bboxes[keep]
            for key in ('gt_bboxes_labels', 'gt_ignore_flags'):
                if key in results:
                    results[key] = results[key][keep]
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(degrees={self.degrees}, translate={self.translate}, scale={self.scale}, '
                f'shear={self.shear}, perspective={self.perspective}, border={self.border}, pad_val={self.pad_val}, '
                f'min_size={self.min_size}, min_area_ratio={self.min_area_ratio}, '
                f'max_aspect_ratio={self.max_aspect_ratio})')
