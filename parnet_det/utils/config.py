"""Reading configs: the file with ``--cfg-options``, and the one walk through dataset wrappers and pipelines."""
import ast
import difflib
import os
import os.path as osp
from typing import Iterator, List, Optional, Sequence, Tuple

from mmengine.config import Config
from mmengine.config.utils import ConfigParsingError

from mmdet.registry import DATASETS


def load_config(path: str, cfg_options: Optional[dict] = None) -> Config:
    """Read a config (``~`` expanded), then apply ``--cfg-options``; one clear error for a wrong path, a file that
    is not a config (not Python, not readable as one) and an option key that is a typo (:func:`check_option_keys`)."""
    path = osp.expanduser(path)
    if not osp.isfile(path):
        raise FileNotFoundError(f'config file {path} does not exist (configs live in configs/, '
                                'e.g. configs/yolo_parnet_xl_coco.py)')
    try:
        cfg = Config.fromfile(path)
    except (SyntaxError, UnicodeDecodeError, ConfigParsingError, OSError) as err:
        gist = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ValueError(f'{path} is not a config file mmengine can read ({gist}); give a Python config, e.g. '
                         'configs/yolo_parnet_xl_coco.py') from err
    if cfg_options:
        check_option_keys(cfg, cfg_options)
        cfg.merge_from_dict(cfg_options)
    return cfg


def check_option_keys(cfg: Config, cfg_options: dict) -> None:
    """Refuse a ``--cfg-options`` key that the config lacks but nearly has (``train_cfg.max_epoch``,
    ``checkpont``, ``data_rot``): mmengine would add it as a new key and run with the setting it was meant
    to change untouched. A key near none of the config's is a new setting (e.g. ``model.backbone.deploy``)."""
    for key in cfg_options:
        node, walked = cfg, []
        for part in key.split('.'):
            if not isinstance(node, (dict, Config)):  # a list index, or a value replaced by a dict: nothing to compare
                break
            if part not in node:
                near = difflib.get_close_matches(part, [str(name) for name in node], n=1, cutoff=0.75)
                if near:
                    raise ValueError(f'--cfg-options {key}: the config has no {".".join([*walked, part])}; did you '
                                     f'mean {".".join([*walked, near[0]])}?')
                break
            node = node[part]
            walked.append(part)


def config_files(path: str) -> List[str]:
    """``path`` and every file of its ``_base_`` chain, each once: the config files a run reads (its outputs
    must replace none of them). mmengine's ``Config`` keeps no list of them; its own parser finds them."""
    files, pending = [], [osp.abspath(osp.expanduser(path))]
    while pending:
        current = pending.pop()
        if current in files or not osp.isfile(current):
            continue
        files.append(current)
        # '::' names a file of another installed package (mmdet::...), not one to write near.
        pending += [osp.join(osp.dirname(current), base) for base in base_files(current)
                    if '::' not in base]
    return files


def base_files(path: str) -> List[str]:
    """The ``_base_`` entries of a Python config file, read without running it (mmengine's reader of them,
    ``Config._get_base_files``, is private)."""
    with open(path) as f:
        tree = ast.parse(f.read(), filename=path)
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == '_base_' for t in node.targets):
            value = ast.literal_eval(node.value)
            return [value] if isinstance(value, str) else list(value)
    return []


def _holds_cwd(folder: str) -> bool:
    real = osp.realpath(folder)
    return osp.commonpath([real, osp.realpath(os.getcwd())]) == real


def data_paths(cfg) -> List[str]:
    """Every data root, image folder and annotation file the config's datasets and evaluators read (all splits):
    the data a run's outputs must never land in."""
    paths = []
    for split in ('train', 'val', 'test'):
        loader = cfg.get(f'{split}_dataloader') or {}
        for dataset in (leaf_datasets(loader['dataset']) if 'dataset' in loader else ()):
            data_root = dataset.get('data_root') or ''
            prefix = dataset.get('data_prefix') or {}
            folders = prefix.values() if isinstance(prefix, dict) else [prefix]  # mmdet's dict, mmpretrain's str
            # A relative data root at or above the current folder (data_root='./') holds every relative path, the
            # default ./work_dirs among them: its image folders and annotation files stand for it.
            paths += [*([data_root] if osp.isabs(data_root) or not _holds_cwd(data_root) else []),
                      *(osp.join(data_root, folder) for folder in folders if folder)]
            if dataset.get('ann_file'):
                paths.append(osp.join(data_root, dataset['ann_file']))
        evaluator = cfg.get(f'{split}_evaluator') or {}
        paths += [metric['ann_file'] for metric in (evaluator if isinstance(evaluator, (list, tuple)) else [evaluator])
                  if metric.get('ann_file')]
    # '' is the current folder only by accident of joining: a config without a data root names none.
    return list(dict.fromkeys(path for path in paths if path))


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
