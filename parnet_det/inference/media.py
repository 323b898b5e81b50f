"""Image files, folders and videos as the inputs of detection: which files, and the frames of a video."""
import logging
import os
import os.path as osp
from typing import Iterator, List, Sequence, Tuple

import cv2
import numpy as np
from mmengine.logging import print_log

from ..utils.fileio import check_new_or_empty_dir

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp')
VIDEO_EXTENSIONS = ('.mp4', '.avi', '.mov', '.mkv', '.webm', '.m4v', '.mpg', '.mpeg')


def is_video(path: str) -> bool:
    """Whether ``path`` names a video (by its extension)."""
    return path.lower().endswith(VIDEO_EXTENSIONS)


# Written by every run at the top of its output folder: no drawn file takes these names.
RESERVED_OUTPUT_NAMES = ('detections.json', 'detections.jsonl')


def drawn_name(path: str) -> str:
    """The name of a file's drawn copy: ``<stem>.mp4`` for a video, the same for an image (``.png`` added
    to a name without an image extension, which OpenCV could not encode to)."""
    if is_video(path):
        return osp.splitext(path)[0] + '.mp4'
    return path if path.lower().endswith(IMAGE_EXTENSIONS) else path + '.png'


class UniqueNames:
    """Output names (relative paths) that never collide, also where only letter case differs: a taken
    name gets a suffix before its extension (``a.jpg``, ``a-2.jpg``), a taken folder one after it."""

    def __init__(self, reserved: Sequence[str] = ()) -> None:
        self.files, self.folders = set(), set()
        for name in reserved:
            self.claim(name)

    def _free(self, name: str) -> bool:
        key = name.casefold()
        parents = [osp.dirname(key)]
        while parents[-1]:
            parents.append(osp.dirname(parents[-1]))
        return key not in self.files and key not in self.folders and not self.files.intersection(parents)

    def free_folder(self, name: str) -> str:
        """``name`` or the first of ``name-2``, ``name-3``, ... that no claimed name uses (nor its folders)."""
        candidate, count = name, 1
        while not self._free(candidate):
            count += 1
            candidate = f'{name}-{count}'
        return candidate

    def claim(self, name: str) -> str:
        """``name``, or ``stem-2.ext``, ``stem-3.ext``, ... if taken; from now on taken."""
        stem, ext = osp.splitext(name)
        candidate, count = name, 1
        while not self._free(candidate):
            count += 1
            candidate = f'{stem}-{count}{ext}'
        key = candidate.casefold()
        self.files.add(key)
        folder = osp.dirname(key)
        while folder:
            self.folders.add(folder)
            folder = osp.dirname(folder)
        return candidate


def _is_output_folder(folder: str, out_dir: str) -> bool:
    """Whether ``folder`` is ``out_dir`` or holds an earlier run's outputs (then it is named on the log)."""
    if osp.realpath(folder) == out_dir:
        return True
    if any(osp.exists(osp.join(folder, name)) for name in RESERVED_OUTPUT_NAMES):
        print_log(f'not searched: {folder} (it holds the outputs of an earlier run)', logger='current',
                  level=logging.WARNING)
        return True
    return False


def list_media(paths: Sequence[str], out_dir: str) -> List[Tuple[str, str]]:
    """The files to detect on, each with the name of its drawn copy, relative to ``out_dir``.

    A file named is taken whatever its extension (reading it tells whether it
    is an image); a folder gives its images and videos, recursively, sorted,
    under its own name (that of the folder it resolves to: ``..`` is named),
    symlinked subfolders included, regular files only.
    ``out_dir``, where inside a folder, is left out of the walk, and so is
    any folder holding an earlier run's ``detections.json(l)``: a run never
    reads outputs. A file met again (the same real path: given twice, by a
    link, or in a folder also given) is left out with a warning. Names are
    unique (see :class:`UniqueNames`): two folders
    ``val`` give ``val/`` and ``val-2/``; ``clip.avi`` beside ``clip.mp4``
    gives ``clip.mp4`` and ``clip-2.mp4``. A path that does not exist is
    kept: reading it reports it; one that is neither a folder nor a regular
    file (a pipe, a device) raises ValueError.

    Args:
        paths (Sequence[str]): Files and folders.
        out_dir (str): Where the drawn copies go.

    Returns:
        list[tuple[str, str]]: (path, output name) pairs.
    """
    names = UniqueNames(RESERVED_OUTPUT_NAMES)
    excluded = osp.realpath(out_dir)
    media = []
    first_given = {}  # real path -> the path it was first given as

    def first_time(file: str) -> bool:
        """Whether ``file`` is new; a file given again (by another name, a link, or within a folder also
        given) is said once and left out: its detections would be written twice."""
        real = osp.realpath(file)
        if real in first_given:
            print_log(f'{file} is {first_given[real]} again (given twice): detected once', logger='current',
                      level=logging.WARNING)
            return False
        first_given[real] = file
        return True

    for path in paths:
        if osp.exists(path) and not osp.isdir(path) and not osp.isfile(path):
            raise ValueError(f'{path} is not a regular file (a device, pipe or socket): give image or video files, '
                             'or folders of them')
        if not osp.isdir(path):
            if first_time(path):
                media.append((path, names.claim(drawn_name(osp.basename(osp.normpath(path))))))
            continue
        root = osp.realpath(path)
        found = []
        walked = set()  # real paths: a symlinked subfolder is searched once, a link to an ancestor not again
        for folder, subfolders, files in os.walk(root, followlinks=True):
            walked.add(osp.realpath(folder))
            subfolders[:] = [name for name in subfolders if osp.realpath(osp.join(folder, name)) not in walked
                             and not _is_output_folder(osp.join(folder, name), excluded)]
            # Regular files only (a symlink to one is fine): a pipe or device named like an image is never read.
            media_files = [osp.join(folder, name) for name in files
                           if name.lower().endswith(IMAGE_EXTENSIONS + VIDEO_EXTENSIONS)]
            found += [file for file in media_files if osp.isfile(file)]
        top = names.free_folder(osp.basename(root) or 'root')  # the file system's root has no name
        relative = [osp.relpath(file, root) for file in sorted(found)]
        media += [(osp.join(path, name), names.claim(osp.join(top, drawn_name(name)))) for name in relative
                  if first_time(osp.join(path, name))]
    return media


def check_outputs(media: Sequence[Tuple[str, str]], out_dir: str, ignore: Sequence[str] = ()) -> None:
    """Refuse, before anything is written, a run that could harm a file: an ``out_dir`` that is a file or
    is not empty but for ``ignore`` (a run never writes over files: a rerun needs a new folder), and (a bug,
    if ever) an output resolving outside ``out_dir`` or onto an input."""
    check_new_or_empty_dir(out_dir, '--out-dir', ignore=ignore)
    root = osp.realpath(out_dir)
    inputs = {osp.realpath(path) for path, _ in media}
    for path, name in media:
        output = osp.realpath(osp.join(root, name))
        if osp.commonpath([root, output]) != root or output == root or output in inputs:
            raise RuntimeError(f'output {name} of {path} resolves to {output}: outside {root} or onto an input')


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
        # What the header says (0 where it does not): a file cut short reads fewer frames.
        self.declared_frames = max(0, int(self.capture.get(cv2.CAP_PROP_FRAME_COUNT)))

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
