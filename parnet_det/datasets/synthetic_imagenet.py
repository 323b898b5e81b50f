"""A generated ImageNet-layout classification dataset: stripe patterns, for CPU tests of the ImageNet configs.

Class = the pattern's orientation (horizontal stripes, vertical stripes, a checkerboard, no pattern), drawn
with a random colour and its complement, a random period and phase, plus pixel noise. Colour never decides
the class, and the recipe's training augmentations (crop, horizontal flip, RandAugment, random erasing) keep
the orientation: a network that learns, fed by a pipeline that keeps labels with their images, solves it.
Laid out as mmpretrain's ``ImageNet`` reads class folders (``out_dir/{train,val}/<class>/<n>.png``); the output
is identical for a given seed and arguments.
"""
import os
import os.path as osp

import cv2
import numpy as np

PATTERNS = ('horizontal', 'vertical', 'checkerboard', 'plain')


def _pattern(kind: str, size: int, rng: np.random.Generator) -> np.ndarray:
    """A 0/1 mask of ``kind`` with a random period (8-16 px) and phase."""
    half_period, phase = int(rng.integers(4, 9)), int(rng.integers(0, 16))
    ys, xs = np.mgrid[:size, :size]
    rows, cols = ((ys + phase) // half_period) % 2, ((xs + phase) // half_period) % 2
    return dict(horizontal=rows, vertical=cols, checkerboard=rows ^ cols, plain=np.zeros_like(rows))[kind]


def _image(kind: str, size: int, rng: np.random.Generator) -> np.ndarray:
    background = rng.integers(0, 256, 3)
    foreground = 255 - background  # the complement: every pattern stands out
    mask = _pattern(kind, size, rng)[..., None]
    image = np.where(mask, foreground, background) + rng.normal(0, 12, (size, size, 3))
    return np.clip(image, 0, 255).astype(np.uint8)


def generate_synthetic_imagenet(out_dir: str, num_train: int = 16, num_val: int = 8, image_size: int = 40,
                                seed: int = 0) -> dict:
    """Write ``num_train`` / ``num_val`` images per class of :data:`PATTERNS` into ``out_dir``.

    Returns:
        dict: ``data_root`` (``out_dir``) and ``classes`` (the class folder names, in label order).
    """
    rng = np.random.default_rng(seed)
    for split, count in (('train', num_train), ('val', num_val)):
        for kind in PATTERNS:
            os.makedirs(osp.join(out_dir, split, kind), exist_ok=True)
            for index in range(count):
                cv2.imwrite(osp.join(out_dir, split, kind, f'{index:04d}.png'), _image(kind, image_size, rng))
    return dict(data_root=out_dir, classes=tuple(sorted(PATTERNS)))
