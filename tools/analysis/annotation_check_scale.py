"""Time and peak memory of the identity checks on a COCO-train-sized annotation file, against mmdet's own parse.

    python tools/analysis/annotation_check_scale.py [--work-dir work_dirs/annotation_check_scale]
        [--images 118287] [--annotations 860001]

Writes a COCO json the size of instances_train2017.json (by default COCO's image and annotation counts,
80 categories, each annotation with a polygon of 24 points: about 450 MB, as COCO's 448 MB) and one empty file per image
(the file check stats each one). Then, in one fresh process: mmdet's parse of it (``COCO(path)``, what
``CocoDataset`` runs) and the identity checks that ``CheckedCocoDataset`` runs right after it on what it
read (:func:`parnet_det.datasets.identity.identity_problems`: unique ids, image files, class order). Prints
the file's size, each step's wall time and the process's peak resident memory after each (the kernel's
ru_maxrss), so the checks' share of time and memory is the difference.
"""
import argparse
import json
import os
import os.path as osp
import random
import resource
import subprocess
import sys
import time

from mmdet.datasets import CocoDataset
from mmdet.datasets.api_wrappers import COCO

from parnet_det.datasets.identity import identity_problems
from parnet_det.utils.cli_args import path_arg, positive_int

# Points per annotation polygon: with COCO's counts this makes the file about COCO train's size.
_POLYGON_POINTS = 24


def peak_memory_gib() -> float:
    """This process's peak resident memory so far (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def measure(path: str, image_dir: str) -> None:
    """mmdet's parse of ``path``, then the identity checks on what it read: time and peak memory after each.

    Run in a process of its own (``--measure``): ru_maxrss is a process's peak, the generator's otherwise.
    """
    start = time.perf_counter()
    coco = COCO(path)
    parsed = time.perf_counter()
    print(f'mmdet parse (COCO): {parsed - start:.1f} s, peak memory {peak_memory_gib():.2f} GiB', flush=True)
    problems = identity_problems(path, coco.dataset, image_dir, CocoDataset.METAINFO['classes'], 'train')
    print(f'identity checks after it: {time.perf_counter() - parsed:.1f} s, peak memory {peak_memory_gib():.2f} GiB '
          f'({len(problems)} problems found)', flush=True)


def write_annotation_file(path: str, num_images: int, num_annotations: int, image_dir: str) -> None:
    """A COCO json of ``num_images`` images (an empty file each in ``image_dir``) and ``num_annotations``
    boxes with 24-point polygons, written as a stream (the file never is in memory whole)."""
    rng = random.Random(0)
    os.makedirs(image_dir, exist_ok=True)
    categories = [dict(id=index + 1, name=name, supercategory='thing')
                  for index, name in enumerate(CocoDataset.METAINFO['classes'])]
    with open(path, 'w') as f:
        f.write('{"info": {"description": "generated at COCO train scale"}, "images": [')
        for image_id in range(1, num_images + 1):
            name = f'{image_id:012d}.jpg'
            open(osp.join(image_dir, name), 'wb').close()
            f.write(('' if image_id == 1 else ', ') + json.dumps(dict(id=image_id, file_name=name, width=640,
                                                                      height=480)))
        f.write('], "annotations": [')
        for ann_id in range(1, num_annotations + 1):
            x, y = rng.uniform(0, 500), rng.uniform(0, 380)
            polygon = [round(rng.uniform(0, 100) + (x if i % 2 == 0 else y), 2) for i in range(2 * _POLYGON_POINTS)]
            ann = dict(id=ann_id, image_id=rng.randint(1, num_images), category_id=rng.randint(1, 80),
                       bbox=[round(x, 2), round(y, 2), 100.0, 100.0], area=10000.0, iscrowd=0,
                       segmentation=[polygon])
            f.write(('' if ann_id == 1 else ', ') + json.dumps(ann))
        f.write('], "categories": ' + json.dumps(categories) + '}')


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--work-dir', type=path_arg, default='work_dirs/annotation_check_scale')
    parser.add_argument('--images', type=positive_int, default=118287, help="COCO train2017's count")
    parser.add_argument('--annotations', type=positive_int, default=860001, help="COCO train2017's count")
    parser.add_argument('--measure', nargs=2, metavar=('JSON', 'IMAGE_DIR'), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        measure(*args.measure)
        return
    path = osp.join(args.work_dir, 'instances_train_scale.json')
    image_dir = osp.join(args.work_dir, 'train')
    if not osp.isfile(path):
        start = time.perf_counter()
        write_annotation_file(path, args.images, args.annotations, image_dir)
        print(f'wrote {path} in {time.perf_counter() - start:.0f} s')
    print(f'{path}: {osp.getsize(path) / 2**20:.0f} MiB, {args.images} images, {args.annotations} annotations')
    subprocess.run([sys.executable, __file__, '--measure', path, image_dir], check=True)


if __name__ == '__main__':
    main()
