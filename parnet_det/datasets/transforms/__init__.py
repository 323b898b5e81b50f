from .letterbox import RectLetterbox
from .loading import CheckedLoadImageFromFile

__all__ = ['CheckedLoadImageFromFile', 'RectLetterbox']
