"""The images an INT8 graph is calibrated on: the config's val images, the same ones every time.

    paths = calibration_images(cfg, 300)       # min(300, len(val set)) paths, evenly spaced over the val set
    pixels = [detector.pixels([path])[0] for path in paths]

Each image is decoded and letterboxed by the runtime detector's own pre-processing
(:meth:`~parnet_det.deploy.RuntimeDetector.pixels`: the test pipeline's resize and pad, at
the graph's input size), so the calibration sees what the graph sees when it detects.
"""
import os.path as osp
from typing import List

import numpy as np
from mmengine.config import Config

from mmdet.registry import DATASETS

from ..utils.config import dataset_image_dir, leaf_datasets

# NNCF's default calibration subset (nncf.quantize's subset_size); a val set smaller than it is used whole.
DEFAULT_CALIBRATION_IMAGES = 300
NO_DATA_HINT = ('point the config at a dataset (--cfg-options val_dataloader.dataset.data_root=...), or generate '
                'one (python tools/dataset/generate_synthetic_coco.py data/synthetic_coco)')


def check_calibration_data(cfg: Config) -> None:
    """Refuse, in one line and before any work, a config whose val images are not there to calibrate on."""
    loader = cfg.get('val_dataloader')
    if not loader or 'dataset' not in loader:
        raise ValueError(f'INT8 calibration needs the config\'s val images, and it has no val_dataloader: '
                         f'{NO_DATA_HINT}')
    for dataset in leaf_datasets(loader['dataset']):
        ann_file = osp.join(dataset.get('data_root') or '', dataset.get('ann_file') or '')
        for path, exists in ((dataset_image_dir(dataset), osp.isdir), (ann_file, osp.isfile)):
            if not exists(path):
                raise FileNotFoundError(f'INT8 calibration needs the config\'s val images, and {path} does not '
                                        f'exist: {NO_DATA_HINT}')


def calibration_images(cfg: Config, count: int = DEFAULT_CALIBRATION_IMAGES) -> List[str]:
    """Paths of ``min(count, len(val set))`` images of the config's val set, evenly spaced over it.

    Args:
        cfg (Config): The detector's config; its ``val_dataloader.dataset`` is read (not its pipeline).
        count (int): Images wanted; defaults to :data:`DEFAULT_CALIBRATION_IMAGES`.
    """
    if count < 1:
        raise ValueError(f'calibration needs at least one image, got {count}')
    check_calibration_data(cfg)
    dataset = DATASETS.build(dict(cfg.val_dataloader.dataset, lazy_init=False))
    if not len(dataset):
        raise ValueError(f'INT8 calibration needs the config\'s val images, and its val set is empty: {NO_DATA_HINT}')
    indices = np.linspace(0, len(dataset) - 1, min(count, len(dataset))).round().astype(int)
    return [dataset.get_data_info(int(index))['img_path'] for index in indices]
