"""Image loading that names the file it cannot read."""
from typing import Optional

from mmcv.transforms import LoadImageFromFile
from mmengine.logging import print_log

from mmdet.registry import TRANSFORMS


@TRANSFORMS.register_module()
class CheckedLoadImageFromFile(LoadImageFromFile):
    """``LoadImageFromFile`` with a deliberate policy for unreadable images.

    Args:
        on_error (str): ``'skip'`` (training): log a warning naming the file and
            the reason and return None, so that mmengine's dataset draws another
            sample; a run does not die hours in on one corrupt JPEG.
            ``'raise'`` (evaluation): stop with an error naming the file, since
            skipping would silently change the AP. Defaults to 'raise'.
        **kwargs: Arguments of mmcv's ``LoadImageFromFile``.
    """

    def __init__(self, on_error: str = 'raise', **kwargs) -> None:
        if on_error not in ('skip', 'raise'):
            raise ValueError(f"on_error must be 'skip' or 'raise', got {on_error!r}")
        super().__init__(**kwargs)
        self.on_error = on_error

    def transform(self, results: dict) -> Optional[dict]:
        try:
            loaded = super().transform(results)
        except Exception as err:  # missing, unreadable or undecodable: all name the file below
            reason = f'{type(err).__name__}: {err}'
        else:
            return loaded
        message = f'cannot read image {results["img_path"]} ({reason})'
        if self.on_error == 'raise':
            raise OSError(message + '; fix or remove it from the annotation file')
        print_log(message + '; skipping it and drawing another sample', logger='current', level=30)
        return None
