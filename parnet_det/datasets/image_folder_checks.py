"""Pre-flight of the ImageNet configs' datasets: mmpretrain's image-folder layout, checked before any work starts.

mmpretrain's ``ImageNet`` / ``CustomDataset`` read ``data_root/<split>/`` either as class folders (one per
class, label = the folder's rank in sorted order) or, where ``meta/<split>.txt`` exists, as the files it lists
("relative/path label" per line). It asserts on a wrong number of class folders only after scanning the whole
tree, warns and goes on over an empty class folder, and fails on a missing image in the middle of an epoch.
"""
import inspect
import os
import os.path as osp
import sys
from typing import List, Optional, Sequence, Tuple

from mmengine.registry import Registry

from .identity import leaves_its_folder, short_list

HOW_TO_GET_IMAGENET = (
    'For ImageNet-1k (ILSVRC2012), put the images in data/imagenet/train/<wnid>/*.JPEG and '
    'data/imagenet/val/<wnid>/*.JPEG (one folder per class, as the official ParNet release and torchvision read '
    "them), or in flat folders with data/imagenet/meta/{train,val}.txt ('<file> <label>' per line); or point the "
    'config elsewhere with --cfg-options train_dataloader.dataset.data_root=... val_dataloader.dataset.data_root=...')


def _mmpretrain_datasets() -> Optional[Registry]:
    """mmpretrain's ``DATASETS`` where mmpretrain is already imported, else None.

    Looked up, not imported: mmpretrain is optional (detection runs without it),
    and a config can name one of its datasets only after importing it (the
    ImageNet configs do, through ``custom_imports``).
    """
    registry = sys.modules.get('mmpretrain.registry')
    return None if registry is None else registry.DATASETS


def _image_folder_base() -> type:
    """mmpretrain's ``CustomDataset``, the base of its image-folder datasets (``ImageNet``, ...)."""
    return _mmpretrain_datasets().get('CustomDataset')


def image_folder_dataset_type(dataset_cfg) -> Optional[type]:
    """The dataset class of ``dataset_cfg`` if it is one of mmpretrain's image-folder datasets, else None
    (always None where mmpretrain is not imported)."""
    registry = _mmpretrain_datasets()
    if registry is None:
        return None
    dataset_type = dataset_cfg.get('type')
    if isinstance(dataset_type, str):
        dataset_type = registry.get(dataset_type.split('.', 1)[-1] if dataset_type.startswith(
            'mmpretrain.') else dataset_type)
    return dataset_type if isinstance(dataset_type, type) and issubclass(dataset_type, _image_folder_base()) else None


def _layout(dataset_cfg) -> Tuple[str, str, bool]:
    """(image folder, annotation file or '', whether the file was asked for) as mmpretrain resolves them."""
    data_root = dataset_cfg.get('data_root') or ''
    prefix = dataset_cfg.get('data_prefix') or dataset_cfg.get('split') or ''
    if isinstance(prefix, dict):
        prefix = prefix.get('img_path', '')
    ann_file = dataset_cfg.get('ann_file') or ''
    if ann_file:
        return osp.join(data_root, prefix), osp.join(data_root, ann_file), True
    meta = osp.join(data_root, 'meta', f'{dataset_cfg.get("split")}.txt')
    return osp.join(data_root, prefix), (meta if dataset_cfg.get('split') and osp.isfile(meta) else ''), False


def _class_folders(image_dir: str) -> List[str]:
    return sorted(entry.name for entry in os.scandir(image_dir) if entry.is_dir())


def image_folder_classes(dataset_cfg, dataset_type: type) -> Tuple[str, ...]:
    """The dataset's class names: its ``metainfo``, its type's (ImageNet's 1000), else its class folders'."""
    classes = (dataset_cfg.get('metainfo') or {}).get('classes') or dataset_type.METAINFO.get('classes')
    image_dir, ann_file, _ = _layout(dataset_cfg)
    if classes is None and not ann_file and osp.isdir(image_dir):
        classes = _class_folders(image_dir)
    return tuple(classes or ())


def _is_image(name: str, dataset_type: type) -> bool:
    default = inspect.signature(_image_folder_base().__init__).parameters['extensions'].default  # ImageNet: its own
    return name.lower().endswith(getattr(dataset_type, 'IMG_EXTENSIONS', default))


def _class_folder_problems(image_dir: str, dataset_type: type, classes: Sequence[str], split: str) -> List[str]:
    folders = _class_folders(image_dir)
    if not folders:
        loose = [name for name in os.listdir(image_dir) if _is_image(name, dataset_type)]
        where = f'{len(loose)} images lie directly in it' if loose else 'it holds no image'
        return [f'the {split} image folder {image_dir} has no class folders ({where}) and there is no '
                f'meta/{split}.txt listing its labels: sort the images into one folder per class (ImageNet val: '
                "by the devkit's ground truth), or write the list"]
    if classes and len(folders) != len(classes):
        return [f'the {split} image folder {image_dir} has {len(folders)} class folders {short_list(folders)}, '
                f'the dataset {len(classes)} classes: labels are the folders\' sorted ranks, so both must be the '
                f'same classes (ImageNet-1k: the 1000 wnid folders n01440764 ... n15075141)']
    empty = [folder for folder in folders
             if not any(_is_image(name, dataset_type) for _, _, names in os.walk(osp.join(image_dir, folder))
                        for name in names)]
    return [f'{len(empty)} class folders of {image_dir} hold no image: {short_list(empty)}; restore their images'
            ] if empty else []


def _listed_file_problems(image_dir: str, ann_file: str, classes: Sequence[str]) -> List[str]:
    with open(ann_file) as f:
        lines = [line.strip() for line in f if line.strip()]
    rows = [line.rsplit(' ', 1) for line in lines]
    malformed = [line for line, row in zip(lines, rows) if len(row) != 2 or not row[1].isdigit()]
    if malformed:
        return [f"{ann_file}: {len(malformed)} lines are not '<file> <label>': {short_list(malformed)}"]
    wrong = sorted({int(label) for _, label in rows if classes and int(label) >= len(classes)})
    if wrong:
        return [f'{ann_file}: labels {short_list(wrong)} are not below the {len(classes)} classes of the dataset']
    outside = [name for name, _ in rows if leaves_its_folder(name)]
    if outside:
        return [f'{ann_file}: {len(outside)} files are outside the image folder {image_dir}: {short_list(outside)}; '
                'list each relative to that folder']
    missing = [name for name, _ in rows if not osp.isfile(osp.join(image_dir, name))]
    return [f'{ann_file}: {len(missing)} of the {len(rows)} images it lists are not files in {image_dir}: '
            f'{short_list(missing)}; restore them, or remove their lines'] if missing else []


def image_folder_problems(dataset_cfg, dataset_type: type, classes: Sequence[str],
                          split: str) -> Tuple[List[str], List[str]]:
    """(missing or mis-laid data, data that does not fit the config) of one image-folder dataset config."""
    image_dir, ann_file, asked = _layout(dataset_cfg)
    if not osp.isdir(image_dir):
        root = dataset_cfg.get('data_root') or '.'
        found = f' ({root} holds {short_list(sorted(os.listdir(root)))})' if osp.isdir(root) else ''
        return [f'image folder {image_dir} does not exist ({split} split){found}'], []
    if asked and not osp.isfile(ann_file):
        return [f'annotation file {ann_file} does not exist ({split} split)'], []
    if ann_file:
        return [], _listed_file_problems(image_dir, ann_file, classes)
    return [], _class_folder_problems(image_dir, dataset_type, classes, split)
