"""Detections drawn on an image with OpenCV, in place.

Not mmdet's ``DetLocalVisualizer``: it draws through matplotlib on a float
canvas of the whole image (a 12000 x 12000 photo took 15 GB and two minutes
even with nothing to draw); OpenCV draws into the decoded image itself.
"""
from typing import Optional, Sequence

import cv2
import numpy as np
from mmengine.structures import InstanceData

from mmdet.visualization.palette import get_palette

FONT = cv2.FONT_HERSHEY_SIMPLEX


class DetectionPainter:
    """Draws boxes, class names and scores; line width and text grow with the image (1 px and 0.4 of
    OpenCV's font scale per 400 px of its longer side, at least 1 px) so that they read alike at any size.

    Args:
        classes (Sequence[str]): Class names, by label.
        palette (optional): The dataset's ``palette`` (RGB per class), or a name mmdet's ``get_palette``
            knows; defaults to mmdet's seeded random colours.
    """

    def __init__(self, classes: Sequence[str], palette: Optional[object] = None) -> None:
        self.classes = tuple(classes)
        # Never fewer colours than labels: a model may predict labels past its class names.
        self.colors_rgb = get_palette(palette or 'random', max(len(self.classes), 1))

    def __call__(self, image: np.ndarray, instances: InstanceData) -> np.ndarray:
        """``image`` (HWC uint8 BGR, drawn on in place) with ``instances`` (boxes in its pixels) drawn."""
        side = max(image.shape[:2])
        thickness = max(1, round(side / 400))
        font_scale = 0.4 * thickness
        # Far-off corners of a wild box, clamped: OpenCV takes 32-bit integers.
        boxes = instances.bboxes.clamp(-side, 2 * side).round().int()
        for (x1, y1, x2, y2), score, label in zip(boxes.tolist(),
                                                  instances.scores.tolist(), instances.labels.tolist()):
            color = tuple(int(c) for c in reversed(self.colors_rgb[label % len(self.colors_rgb)]))
            cv2.rectangle(image, (x1, y1), (x2, y2), color, thickness)
            name = self.classes[label] if label < len(self.classes) else f'class {label}'
            text = f'{name} {score:.2f}'
            (width, height), baseline = cv2.getTextSize(text, FONT, font_scale, thickness)
            top = max(y1 - height - baseline, 0)
            cv2.rectangle(image, (x1, top), (x1 + width, top + height + baseline), color, cv2.FILLED)
            cv2.putText(image, text, (x1, top + height), FONT, font_scale, (255, 255, 255), thickness, cv2.LINE_AA)
        return image
