"""A generated ImageNet-layout classification dataset: stripe patterns, for CPU tests of the ImageNet configs.

Class = the pattern's orientation (horizontal stripes, vertical stripes, a checkerboard, no pattern), drawn
with random colours, period and phase, plus pixel noise. Colour never decides the class, and the training
augmentations of the recipe (crop, horizontal flip, RandAugment, random erasing) keep the orientation, so a
network that learns and a pipeline that keeps labels with their images solve it, and a broken one cannot.
Laid out as mmpretrain's ``ImageNet`` reads class folders (``out_dir/{train,val}/<class>/<n>.png``); the output
is identical for a given seed and arguments.
"""
import os
import os.path as osp

import cv2
import numpy as np

PATTERNS = ('horizontal', 'vertical', 'checkerboard', 'plain')


def _pattern(kind: str, size: int, rng: np.random.Generator) -> np.ndarray:
    """A 0/1 mask of ``kind`` with a random period (4-10 px) and phase."""
    period, phase = int(rng.integers(4, 11)), int(rng.integers(0, 10))
    ys, xs = np.mgrid[:size, :size]
    rows, cols = ((ys + phase) // (period // 2)) % 2, ((xs + phase) // (period // 2)) % 2
    return dict(horizontal=rows, vertical=cols, checkerboard=rows ^ cols, plain=np.zeros_like(rows))[kind]


def _image(kind: str, size: int, rng: np.random.Generator) -> np.ndarray:
    background, foreground = rng.integers(0, 256, (2, 3))
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
