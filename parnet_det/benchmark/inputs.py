"""The benchmark's inputs: random decoded images, and what mmdet's pipeline makes of them."""
from typing import List, Sequence

import numpy as np
import torch

from mmdet.structures import DetDataSample


def synthetic_images(resolution: int, batch_size: int, seed: int = 0) -> List[np.ndarray]:
    """Random uint8 HWC images (as an image decoder returns them), the same for every model."""
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (resolution, resolution, 3), dtype=np.uint8) for _ in range(batch_size)]


def pack_images(images: Sequence[np.ndarray]) -> dict:
    """What mmdet's ``PackDetInputs`` makes of decoded images: CHW uint8 tensors and their metadata."""
    inputs = [torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))) for image in images]
    data_samples = [
        DetDataSample(metainfo=dict(img_shape=image.shape[:2], ori_shape=image.shape[:2], scale_factor=(1.0, 1.0)))
        for image in images
    ]
    return dict(inputs=inputs, data_samples=data_samples)
