"""Checks of what callers pass to the inference engine, before it reaches the pre-processing."""
from typing import Callable, List, Sequence, Tuple

import numpy as np

from .preprocess import ImageInput, read_image


def check_images(images: Sequence[ImageInput],
                 resized_shape: Callable[[int, int], Tuple[int, int]]) -> List[np.ndarray]:
    """The decoded images of a batch, or a clear error for input the engine cannot detect on.

    A bare path or array (one image, not a batch) would be iterated character
    by character or row by row; an empty image, or one so elongated that its
    resize to the network input has a side of 0 pixels, has no scale factor.

    Args:
        images (Sequence[str | np.ndarray]): The batch, paths or HxWx3 uint8 BGR arrays.
        resized_shape (Callable): (height, width) -> (height, width) after the resize.
    """
    if isinstance(images, (str, np.ndarray)) or not isinstance(images, Sequence):
        raise TypeError(f'expected a list of images (paths or HxWx3 uint8 BGR arrays), got a {type(images).__name__}; '
                        'for one image pass [image]')
    if len(images) == 0:
        raise ValueError('no images to detect on')
    arrays = [read_image(image) for image in images]
    for index, array in enumerate(arrays):
        height, width = array.shape[:2]
        if height == 0 or width == 0:
            raise ValueError(f'image {index} is empty ({height}x{width} pixels)')
        new_h, new_w = resized_shape(height, width)
        if new_h == 0 or new_w == 0:
            raise ValueError(f'image {index} ({height}x{width} pixels) is too elongated: resized to the network '
                             f'input it would be {new_h}x{new_w} pixels')
    return arrays
