"""Image files, folders and videos as the inputs of detection: which files, and the frames of a video."""
import os
import os.path as osp
from typing import Iterator, List, Sequence, Tuple

import cv2
import numpy as np

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp')
VIDEO_EXTENSIONS = ('.mp4', '.avi', '.mov', '.mkv', '.webm', '.m4v', '.mpg', '.mpeg')


def is_video(path: str) -> bool:
    """Whether ``path`` names a video (by its extension)."""
    return path.lower().endswith(VIDEO_EXTENSIONS)


def list_media(paths: Sequence[str]) -> List[Tuple[str, str]]:
    """The files to detect on, each with the name of its output (relative to the output folder).

    A file named is taken whatever its extension (reading it tells whether it
    is an image); a folder gives its images and videos, recursively, sorted,
    under its own name. A path that does not exist is kept: reading it reports it.

    Args:
        paths (Sequence[str]): Files and folders.

    Returns:
        list[tuple[str, str]]: (path, output name) pairs.
    """
    media = []
    for path in paths:
        if not osp.isdir(path):
            media.append((path, osp.basename(path)))
            continue
        root = osp.normpath(path)
        found = []
        for folder, _, files in os.walk(root):
            found += [osp.join(folder, name) for name in files
                      if name.lower().endswith(IMAGE_EXTENSIONS + VIDEO_EXTENSIONS)]
        media += [(file, osp.join(osp.basename(root), osp.relpath(file, root))) for file in sorted(found)]
    return media


class VideoFrames:
    """The frames of a video file, read with OpenCV, in batches.

    Args:
        path (str): The video.

    Raises:
        ValueError: If OpenCV cannot open it.
    """

    def __init__(self, path: str) -> None:
        self.capture = cv2.VideoCapture(path)
        if not self.capture.isOpened():
            raise ValueError(f'{path}: not a readable video (missing, corrupt, or a codec OpenCV lacks)')
        # Some containers do not record their frame rate; 25 fps is the usual default of video tools.
        self.fps = self.capture.get(cv2.CAP_PROP_FPS) or 25.0

    def batches(self, batch_size: int) -> Iterator[List[np.ndarray]]:
        """Consecutive frames (HWC uint8 BGR), ``batch_size`` at a time (the last batch may be shorter)."""
        try:
            while True:
                batch = []
                while len(batch) < batch_size:
                    ok, frame = self.capture.read()
                    if not ok:
                        break
                    batch.append(frame)
                if not batch:
                    return
                yield batch
        finally:
            self.capture.release()
