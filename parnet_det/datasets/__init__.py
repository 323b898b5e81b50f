from .batch_shapes import OfficialBatchShapes
from .checked_coco import CheckedCocoDataset
from .checks import check_dataset_config
from .identity import DatasetConfigError
from .synthetic_coco import (
                             CLASSES,
                             DEFAULT_NUM_CLASSES,
                             SHAPES,
                             generate_synthetic_coco,
                             synthetic_coco_cfg_options,
                             synthetic_coco_metainfo,
)
from .synthetic_imagenet import PATTERNS, generate_synthetic_imagenet
from .transforms import CentredRandomPerspective, CheckedLoadImageFromFile, RandomHSVGain, RectLetterbox

__all__ = [
    'CLASSES', 'DEFAULT_NUM_CLASSES', 'PATTERNS', 'SHAPES', 'generate_synthetic_coco', 'generate_synthetic_imagenet',
    'synthetic_coco_cfg_options', 'synthetic_coco_metainfo',
    'CentredRandomPerspective', 'CheckedCocoDataset', 'CheckedLoadImageFromFile', 'DatasetConfigError',
    'OfficialBatchShapes', 'RandomHSVGain', 'RectLetterbox', 'check_dataset_config'
]
