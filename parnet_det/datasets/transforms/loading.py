"""Image loading that names the file it cannot read, and warns where its size is not the annotation file's."""
import logging
from typing import Optional

from mmcv.transforms import LoadImageFromFile
from mmengine.logging import print_log
from PIL import Image

from mmdet.registry import TRANSFORMS

# The EXIF tag that says how the camera was turned; decoders (OpenCV, mmcv) apply it.
_EXIF_ORIENTATION = 0x0112


@TRANSFORMS.register_module()
class CheckedLoadImageFromFile(LoadImageFromFile):
    """``LoadImageFromFile`` with a deliberate policy for unreadable images.

    Args:
        on_error (str): ``'skip'`` (training): log a warning naming the file,
            the reason and how many were skipped so far, and return None, so that
            mmengine's dataset draws another sample; a run does not die hours in
            on one corrupt JPEG (the ImageNet configs use it as
            ``mmdet.CheckedLoadImageFromFile``: mmpretrain's datasets draw again too).
            ``'raise'`` (evaluation): stop with an error naming the file, since
            skipping would silently change the AP. Defaults to 'raise'.
        **kwargs: Arguments of mmcv's ``LoadImageFromFile``.
    """

    def __init__(self, on_error: str = 'raise', **kwargs) -> None:
        if on_error not in ('skip', 'raise'):
            raise ValueError(f"on_error must be 'skip' or 'raise', got {on_error!r}")
        super().__init__(**kwargs)
        self.on_error = on_error
        self._size_warned = set()  # the files whose size was reported (each once per process)
        self.skipped = 0  # images skipped by this process (each dataloader worker counts its own)

    def transform(self, results: dict) -> Optional[dict]:
        try:
            loaded = super().transform(results)
        except Exception as err:  # missing, unreadable or undecodable: all name the file below
            reason = f'{type(err).__name__}: {err}'
        else:
            if loaded is not None:
                self._warn_if_size_differs(loaded)
            return loaded
        message = f'cannot read image {results["img_path"]} ({reason})'
        if self.on_error == 'raise':
            raise OSError(message + '; fix or remove it from the annotation file')
        self.skipped += 1
        print_log(f'{message}; skipping it and drawing another sample ({self.skipped} skipped so far by this '
                  'process)', logger='current', level=logging.WARNING)
        return None

    def _warn_if_size_differs(self, results: dict) -> None:
        """Warn, once per file, where the decoded image's size is not the annotation file's width and height:
        the boxes were drawn on an image of that size and would land on other pixels. The usual cause is an
        EXIF orientation tag, which the decoder applies (named when the file has one)."""
        path = results['img_path']
        declared = (results.get('height'), results.get('width'))
        decoded = tuple(results['img_shape'][:2])
        if None in declared or decoded == declared or path in self._size_warned:
            return
        self._size_warned.add(path)
        orientation = exif_orientation(path)
        cause = (f' (its EXIF orientation tag is {orientation}: the decoder turned it; save the image turned, '
                 'without the tag, or turn the boxes)' if orientation not in (None, 1) else '')
        print_log(f'{path}: decoded as {decoded[1]}x{decoded[0]} (w x h), the annotation file says '
                  f'{declared[1]}x{declared[0]}{cause}; its boxes may land on the wrong pixels: fix the width and '
                  'height (and boxes) in the annotation file', logger='current', level=logging.WARNING)


def exif_orientation(path: str) -> Optional[int]:
    """The EXIF orientation tag (1-8) of an image file, or None (none, or not readable by Pillow)."""
    try:
        with Image.open(path) as image:
            return image.getexif().get(_EXIF_ORIENTATION)
    except (OSError, ValueError):  # not an image Pillow reads: no tag to name
        return None
