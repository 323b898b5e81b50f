"""Scaled-YOLOv4's augment_hsv: random gains multiplying OpenCV's 8-bit hue, saturation and value."""
from typing import Sequence

import cv2
import numpy as np
from mmcv.transforms import BaseTransform
from mmcv.transforms.utils import cache_randomness

from mmdet.registry import TRANSFORMS


def apply_hsv_gains(img: np.ndarray, factors: Sequence[float]) -> np.ndarray:
    """An 8-bit BGR image with its H, S, V multiplied by ``factors = (r_h, r_s, r_v)`` through lookup tables::

        H' = floor((H r_h) mod 180),  S' = floor(min(S r_s, 255)),  V' = floor(min(V r_v, 255))

    in OpenCV's 8-bit HSV (H in 0-179, half degrees; S, V in 0-255), converted back to BGR.
    """
    hue, saturation, value = cv2.split(cv2.cvtColor(img, cv2.COLOR_BGR2HSV))
    levels = np.arange(256, dtype=np.float64)
    # The hue is an angle: it wraps; saturation and value saturate.
    hue_table = np.mod(levels * factors[0], 180).astype(np.uint8)
    saturation_table = np.clip(levels * factors[1], 0, 255).astype(np.uint8)
    value_table = np.clip(levels * factors[2], 0, 255).astype(np.uint8)
    hsv = cv2.merge((cv2.LUT(hue, hue_table), cv2.LUT(saturation, saturation_table), cv2.LUT(value, value_table)))
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)


@TRANSFORMS.register_module()
class RandomHSVGain(BaseTransform):
    """Multiply hue, saturation and value by random factors, as the recipe's augment_hsv (every image).

    Per image ``(r_h, r_s, r_v) = 1 + U(-1, 1)^3 . (hue_gain, saturation_gain, value_gain)`` (one call
    of numpy's global ``uniform(-1, 1, 3)``), applied by :func:`apply_hsv_gains`. mmdet's
    ``YOLOXHSVRandomAug`` differs: it adds offsets, each channel with probability 1/2.

    Required keys: ``img`` (8-bit BGR, ``H x W x 3``). Modified: ``img``.

    Args:
        hue_gain (float): Defaults to 0.015 (the recipe's hsv_h).
        saturation_gain (float): Defaults to 0.7 (hsv_s).
        value_gain (float): Defaults to 0.4 (hsv_v).
    """

    def __init__(self, hue_gain: float = 0.015, saturation_gain: float = 0.7, value_gain: float = 0.4) -> None:
        self.gains = np.array([hue_gain, saturation_gain, value_gain])
        if not ((self.gains >= 0) & (self.gains <= 1)).all():
            raise ValueError(f'{self.__class__.__name__}: gains must be in [0, 1] (a factor 1 +- gain stays >= 0), '
                             f'got {tuple(self.gains)}')

    @cache_randomness
    def _draw_factors(self) -> np.ndarray:
        return 1 + np.random.uniform(-1, 1, 3) * self.gains

    def transform(self, results: dict) -> dict:
        img = results['img']
        if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
            raise ValueError(f'{self.__class__.__name__}: needs an 8-bit BGR image (H x W x 3 uint8), '
                             f'got {img.dtype} {img.shape}')
        results['img'] = apply_hsv_gains(img, self._draw_factors())
        return results

    def __repr__(self) -> str:
        hue, saturation, value = self.gains
        return f'{self.__class__.__name__}(hue_gain={hue}, saturation_gain={saturation}, value_gain={value})'
