"""Detect objects in your own images and videos: boxes drawn, and the detections as JSON.

    python tools/infer.py CONFIG CHECKPOINT INPUT... [--out-dir DIR] [--device cuda:0|cpu]
        [--precision fp32|fp16|bf16] [--score-thr 0.3] [--batch-size 1] [--no-draw] [--ann-file FILE]
        [--fast-path streams channels_last compile cuda_graph] [--cfg-options key=value ...]

INPUT: image files, folders (searched recursively for images and videos, symlinked subfolders
included, regular files only) and video files (.mp4, .avi, .mov, ...). --out-dir must be new or
empty, and writable: the tool never writes over a file, and never
outside it (a rerun needs a new folder; an --out-dir inside an input folder is not searched).
Into it go the images with boxes, class names and scores drawn (a folder's files under the folder's
name; a name already taken gets a suffix: val/, val-2/), each video drawn as <name>.mp4, and the
detections in COCO's results format (bbox as x, y, width, height in the input's pixels), each with
its file_name (and frame, for videos), category_id and category (the class name):
detections.jsonl, one line per image as it is done (a crash keeps every finished image), and
detections.json, all of them, at the end. Without --ann-file, category_id is the model's 0-based label
and image_id counts the images; with it (or when every input is in the image folder of one of the
config's datasets), both are that annotation file's ids, so pycocotools' loadRes and COCOeval take
the file. Detections with an infinite or NaN box or score are dropped and counted.
Single-stage detectors run through parnet_det's engine (--precision and --fast-path apply); others
(two-stage) through mmdet's inference API. User errors stop the tool before any output with one
line and exit status 2 (a second run into an --out-dir in use among them: the folder is locked);
an input given twice (by name, or within a folder also given) is detected once, with a warning; an
input that cannot be read is reported and skipped, and the exit status is 1 if any was.
"""
import argparse
import contextlib
import sys

import torch
from mmengine.config import DictAction

from parnet_det.apis import MediaInferencer, load_config, load_predictor
from parnet_det.apis.inferencer import locked_outputs
from parnet_det.apis.results import CocoIds, config_split_ann_file
from parnet_det.inference import FAST_PATH_NAMES, PRECISION_DTYPES
from parnet_det.utils.checkpoint import CheckpointError
from parnet_det.utils.cli_args import path_arg, positive_int, unit_interval, user_errors
from parnet_det.utils.warnings_filter import filter_known_warnings
from parnet_det.utils.work_dir_lock import WorkDirInUseError


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', type=path_arg, help='detector config')
    parser.add_argument('checkpoint', type=path_arg,
                        help='its weights (training or tools/reparameterize.py checkpoint)')
    parser.add_argument('inputs', type=path_arg, nargs='+', metavar='INPUT', help='image files, folders, video files')
    parser.add_argument('--out-dir', type=path_arg, default='work_dirs/infer',
                        help='a new or empty folder for the drawn files and the detections')
    parser.add_argument('--device', default='cuda:0' if torch.cuda.is_available() else 'cpu',
                        help='cuda:N or cpu (default: cuda:0 where there is a GPU)')
    parser.add_argument('--precision', default='fp32', choices=list(PRECISION_DTYPES),
                        help='network precision (single-stage detectors; fp16 needs CUDA)')
    parser.add_argument('--score-thr', type=unit_interval, default=0.3,
                        help="detections scoring under this are neither drawn nor written (0: all; the head's "
                             'own threshold is lowered to it)')
    parser.add_argument('--batch-size', type=positive_int, default=1, help='images or frames per forward')
    parser.add_argument('--fast-path', nargs='+', default=[], choices=list(FAST_PATH_NAMES),
                        help='engine fast paths (single-stage detectors; cuda_graph needs CUDA)')
    parser.add_argument('--no-draw', action='store_true', help='write the detections only')
    parser.add_argument('--ann-file', type=path_arg,
                        help="a COCO annotation file holding the inputs: its image and category ids")
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='override settings of the config')
    return parser.parse_args(argv)


def coco_ids_for(ann_file, cfg, inputs, files):
    """``ann_file``'s ids (every file must be its image), else those of the config's dataset whose image
    folder holds all ``inputs``, where it lists every file."""
    if ann_file:
        coco_ids = CocoIds(ann_file)
        coco_ids.image_ids(files)
        return coco_ids
    ann_file = config_split_ann_file(cfg, inputs)
    if ann_file is None:
        return None
    coco_ids = CocoIds(ann_file)
    try:
        coco_ids.image_ids(files)
    except ValueError:  # files the annotation file does not list: a folder of images, not the dataset's split
        return None
    print(f'image and category ids of {ann_file} (the config names it for these images)')
    return coco_ids


def main(argv=None):
    args = parse_args(argv)
    with contextlib.ExitStack() as run:
        with user_errors(CheckpointError, OSError, KeyError, ValueError, WorkDirInUseError):
            # Before anything is built or written; one run per --out-dir, held to the end.
            media = run.enter_context(locked_outputs(args.inputs, args.out_dir))
            cfg = load_config(args.config, args.cfg_options)
            coco_ids = coco_ids_for(args.ann_file, cfg, args.inputs, [path for path, _ in media])
            predict, dataset_meta = load_predictor(cfg, args.checkpoint, args.device, None, args.precision,
                                                   '+'.join(args.fast_path) or 'eager', args.score_thr)
            inferencer = MediaInferencer(predict, dataset_meta, args.out_dir, args.score_thr, args.batch_size,
                                         draw=not args.no_draw, coco_ids=coco_ids)
        report = inferencer.run(media)
    dropped = f'; {report.non_finite} with a non-finite box or score dropped' if report.non_finite else ''
    print(f'{report.images} images and frames, {report.detections} detections scoring at least {args.score_thr}'
          f'{dropped}: {report.json_path}; {len(report.drawn)} drawn files in {args.out_dir}')
    if report.failed:
        sys.exit(f'{len(report.failed)} input(s) skipped: ' + ', '.join(path for path, _ in report.failed))

if __name__ == '__main__':
    filter_known_warnings()
    main()
