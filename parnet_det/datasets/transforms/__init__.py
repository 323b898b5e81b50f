from .box_candidates import box_candidates
from .centred_perspective import CentredRandomPerspective
from .hsv_gain import RandomHSVGain, apply_hsv_gains
from .letterbox import RectLetterbox
from .loading import CheckedLoadImageFromFile

__all__ = ['CentredRandomPerspective', 'CheckedLoadImageFromFile', 'RandomHSVGain', 'RectLetterbox',
           'apply_hsv_gains', 'box_candidates']
