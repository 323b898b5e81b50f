"""Reading configs: the file with ``--cfg-options``, and the one walk through dataset wrappers and pipelines."""
import os.path as osp
from typing import Iterator, Optional, Sequence, Tuple

from mmengine.config import Config

from mmdet.registry import DATASETS


def load_config(path: str, cfg_options: Optional[dict] = None) -> Config:
    """Read a config (``~`` expanded), with a clear error for a wrong path, then apply ``--cfg-options``."""
    path = osp.expanduser(path)
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


def dataset_image_dir(dataset_cfg) -> str:
    """The folder a (leaf) dataset config reads its images from: ``data_root`` joined with ``data_prefix.img``."""
    return osp.join(dataset_cfg.get('data_root') or '', (dataset_cfg.get('data_prefix') or {}).get('img', ''))


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


def config_class_names(cfg: Config, split: str = 'test_dataloader') -> Optional[Tuple[str, ...]]:
    """The class names a config's ``split`` dataset uses: its ``metainfo.classes``, else its dataset type's
    default ``METAINFO`` (e.g. ``CocoDataset``'s 80 names); None when the config has no such dataset."""
    dataloader = cfg.get(split)
    if not dataloader or 'dataset' not in dataloader:
        return None
    for dataset in leaf_datasets(dataloader['dataset']):
        classes = (dataset.get('metainfo') or {}).get('classes')
        if classes is None:
            dataset_type = DATASETS.get(dataset['type']) if isinstance(dataset['type'], str) else dataset['type']
            classes = getattr(dataset_type, 'METAINFO', {}).get('classes')
        if classes is not None:
            return tuple(classes)
    return None


def class_names_difference(checkpoint_classes: Optional[Sequence[str]],
                           config_classes: Optional[Sequence[str]]) -> Optional[str]:
    """One line naming both lists when a checkpoint's ``dataset_meta['classes']`` differ from the config's
    (another order counts: labels would be renamed); None when they agree or either is unknown."""
    if checkpoint_classes is None or config_classes is None:
        return None
    if tuple(checkpoint_classes) == tuple(config_classes):
        return None
    return (f"the checkpoint's classes {list(checkpoint_classes)} differ from the config's "
            f'{list(config_classes)} (labels would be named wrongly)')
