"""The checks that keep one image, box or class from being taken for another: unique ids, every listed image a
file inside its folder, classes in the file's order.

Run twice, on the same functions: by the pre-flight (``checks.py``) on the annotation files it parses
itself, and by :class:`~parnet_det.datasets.CheckedCocoDataset` on every file right after mmdet's own
parse, whatever its size (COCO's 450 MB train json included) and without parsing it again.
"""
import collections
import os.path as osp
from typing import List, Optional, Sequence


class DatasetConfigError(FileNotFoundError):
    """The dataset a config points at is missing or malformed."""


def short_list(items: Sequence, limit: int = 8) -> str:
    """``items`` as a list literal, cut after ``limit`` of them (with their count)."""
    items = list(items)
    return repr(items[:limit])[:-1] + (f', ... ({len(items)} in all)]' if len(items) > limit else ']')


def _duplicates(values) -> List:
    counts = collections.Counter(values)
    return [value for value, count in counts.items() if count > 1]


def check_identities(path: str, content: dict) -> List[str]:
    """Image ids and annotation ids must be unique: mmdet keeps one image per id (the other's boxes move onto
    it) and asserts on duplicate annotation ids."""
    problems = []
    images = _duplicates(i.get('id') for i in content['images'])
    if images:
        problems.append(f'{path}: image ids {short_list(images)} are each given to more than one image (one of them '
                        'would be dropped and its boxes moved onto the other): give every image its own id')
    annotations = _duplicates(a.get('id') for a in content['annotations'])
    if annotations:
        problems.append(f'{path}: annotation ids {short_list(annotations)} are each given to more than one '
                        'annotation: give every annotation its own id (e.g. number them 1..N)')
    return problems


def leaves_its_folder(file_name: str) -> bool:
    # Judged on the name, not the real path: an image folder of symlinks to shared storage is fine.
    return osp.isabs(file_name) or osp.normpath(file_name).split(osp.sep)[0] == '..'


def linked_out_of(image_dir: str, names: Sequence[str], root: str) -> List[str]:
    """The ``names`` in ``image_dir`` that are symlinks to a file outside ``root`` (resolved; one ``lstat``
    each, a ``realpath`` only for links): a link to a system file reads as an image only when the run meets it."""
    real_root = osp.realpath(root)
    return [name for name in names if osp.islink(osp.join(image_dir, name))
            and osp.commonpath([real_root, osp.realpath(osp.join(image_dir, name))]) != real_root]


def check_image_files(path: str, content: dict, image_dir: str, data_root: Optional[str] = None) -> List[str]:
    """Every image the file lists must be named inside ``image_dir`` (no absolute path, no ``..`` out of it),
    not be a symlink leading out of ``data_root`` (else ``image_dir``; a linked data root or image folder is
    fine), and be a regular file there (one ``stat`` each)."""
    names = [str(i.get('file_name')) for i in content['images']]
    outside = [name for name in names if leaves_its_folder(name)]
    if outside:
        return [f'{path}: {len(outside)} of the {len(names)} images it lists are outside the image folder '
                f'{image_dir}: {short_list(outside)}; give each file_name relative to that folder (move the files '
                'into it, or symlink them there)']
    root = data_root or image_dir
    linked = linked_out_of(image_dir, names, root)
    if linked:
        return [f'{path}: {len(linked)} of the {len(names)} images it lists are symlinks leading out of the data '
                f'root {root}: {short_list(linked)} (the first to {osp.realpath(osp.join(image_dir, linked[0]))}); '
                'copy the images in, or link the whole data root or image folder instead']
    missing = [name for name in names if not osp.isfile(osp.join(image_dir, name))]
    if not missing:
        return []
    return [f'{path}: {len(missing)} of the {len(names)} images it lists are not files in {image_dir}: '
            f'{short_list(missing)}; restore them, or remove them and their annotations from the file']


def check_category_order(path: str, content: dict, classes: Sequence[str], split: str) -> List[str]:
    """The config's classes must be in the file's order: mmdet numbers labels in the order of the file's
    categories (``get_cat_ids``) and names them in the order of the config's classes."""
    file_order = [c.get('name') for c in content['categories'] if c.get('name') in classes]
    if file_order == list(classes):
        return []
    return [f'{path}: the file lists the {split} dataset\'s classes in the order {short_list(file_order)}, the '
            f'config in the order {short_list(classes)}; mmdet would number the labels in the file\'s order and name '
            f'them in the config\'s (renaming them): set metainfo=dict(classes={tuple(file_order)!r}) on every '
            'dataset of the config, or reorder the categories of the file']


def identity_problems(path: str, content: dict, image_dir: Optional[str], classes: Sequence[str],
                      split: str, data_root: Optional[str] = None) -> List[str]:
    """Everything :func:`check_identities`, :func:`check_image_files` (where ``image_dir`` is a folder) and,
    where every class is a category of the file, :func:`check_category_order` find in ``content``."""
    problems = check_identities(path, content)
    if image_dir is not None and osp.isdir(image_dir):
        problems += check_image_files(path, content, image_dir, data_root)
    names = {c.get('name') for c in content['categories']}
    if classes and all(name in names for name in classes):
        problems += check_category_order(path, content, classes, split)
    return problems


def dataset_error(problems: Sequence[str], how_to_fix: str = '') -> DatasetConfigError:
    """One :class:`DatasetConfigError` listing ``problems`` (each once, in order), then ``how_to_fix``."""
    unique = list(dict.fromkeys(problems))
    return DatasetConfigError('the dataset of this config is not usable:\n  - ' + '\n  - '.join(unique)
                              + (f'\n{how_to_fix}' if how_to_fix else ''))
