"""Reading configs: the file with ``--cfg-options``, and the one walk through dataset wrappers and pipelines."""
import os.path as osp
from typing import Iterator, Optional

from mmengine.config import Config


def load_config(path: str, cfg_options: Optional[dict] = None) -> Config:
    """Read a config, with a clear error for a wrong path, then apply ``--cfg-options``."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'config file {path} does not exist (configs live in configs/, '
                                'e.g. configs/yolo_parnet_xl_coco.py)')
    cfg = Config.fromfile(path)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    return cfg


def walk_datasets(dataset_cfg) -> Iterator[dict]:
    """A dataset config and every config inside it, outermost first: through wrappers that hold one
    (``dataset``: MultiImageMixDataset, RepeatDataset, ...) or several (``datasets``: ConcatDataset)."""
    yield dataset_cfg
    inner = dataset_cfg.get('datasets') or ([dataset_cfg['dataset']] if 'dataset' in dataset_cfg else [])
    for sub in inner:
        yield from walk_datasets(sub)


def leaf_datasets(dataset_cfg) -> Iterator[dict]:
    """The datasets that read files (no wrapper)."""
    return (dataset for dataset in walk_datasets(dataset_cfg) if 'dataset' not in dataset and 'datasets' not in dataset)


def dataset_pipeline(dataset_cfg) -> list:
    """The pipeline samples go through: the outermost one (a wrapper such as ``MultiImageMixDataset`` holds
    the training pipeline, its dataset only the loading steps)."""
    pipeline = next((dataset['pipeline'] for dataset in walk_datasets(dataset_cfg)
                     if dataset.get('pipeline') is not None), None)
    if pipeline is None:
        raise KeyError('the dataset config has no pipeline (nor does any dataset it wraps)')
    return pipeline


def pipeline_step(pipeline: list, step_type: str) -> Optional[dict]:
    """The first step of ``step_type`` in ``pipeline``, or None."""
    return next((step for step in pipeline if step['type'] == step_type), None)
