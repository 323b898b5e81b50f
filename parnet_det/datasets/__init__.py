from .synthetic_coco import (CLASSES, DEFAULT_NUM_CLASSES, SHAPES, generate_synthetic_coco,
                             synthetic_coco_metainfo)

__all__ = ['CLASSES', 'DEFAULT_NUM_CLASSES', 'SHAPES', 'generate_synthetic_coco', 'synthetic_coco_metainfo']
