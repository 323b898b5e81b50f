"""Detect objects in your own images and videos: boxes drawn, and one JSON of the detections.

    python tools/infer.py CONFIG CHECKPOINT INPUT... [--out-dir DIR] [--device cuda:0|cpu]
        [--precision fp32|fp16|bf16] [--score-thr 0.3] [--batch-size 1]
        [--fast-path streams channels_last compile cuda_graph] [--cfg-options key=value ...]

INPUT: image files, folders (searched recursively for images and videos) and video files (.mp4,
.avi, .mov, ...). Writes into --out-dir the images with boxes, class names and scores drawn (a
folder's files under the folder's name), each video drawn as <name>.mp4, and detections.json: the
detections in COCO's results format (bbox as x, y, width, height in the input's pixels), each with
its file_name (and frame, for videos), category_id (the model's 0-based label) and category (its name).
Single-stage detectors run through parnet_det's engine (--precision and --fast-path apply); others
(two-stage) through mmdet's inference API. An input that cannot be read is reported and skipped;
the exit status is 1 if any was.
"""
import argparse
import sys

import torch
from mmengine.config import DictAction

from parnet_det.apis import MediaInferencer, load_predictor
from parnet_det.inference import FAST_PATH_NAMES, PRECISION_DTYPES
from parnet_det.utils.cli_args import positive_int
from parnet_det.utils.warnings_filter import filter_known_warnings


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', help='detector config')
    parser.add_argument('checkpoint', help='its weights (training or tools/reparameterize.py checkpoint)')
    parser.add_argument('inputs', nargs='+', metavar='INPUT', help='image files, folders, video files')
    parser.add_argument('--out-dir', default='work_dirs/infer', help='where the drawn files and detections.json go')
    parser.add_argument('--device', default='cuda:0' if torch.cuda.is_available() else 'cpu',
                        help='cuda:N or cpu (default: cuda:0 where there is a GPU)')
    parser.add_argument('--precision', default='fp32', choices=list(PRECISION_DTYPES),
                        help='network precision (single-stage detectors; fp16 needs CUDA)')
    parser.add_argument('--score-thr', type=float, default=0.3,
                        help='detections scoring at most this are neither drawn nor written (0: all)')
    parser.add_argument('--batch-size', type=positive_int, default=1, help='images or frames per forward')
    parser.add_argument('--fast-path', nargs='+', default=[], choices=list(FAST_PATH_NAMES),
                        help='engine fast paths (single-stage detectors; cuda_graph needs CUDA)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='override settings of the config')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    try:
        predict, dataset_meta = load_predictor(args.config, args.checkpoint, args.device, args.cfg_options,
                                               args.precision, '+'.join(args.fast_path) or 'eager')
    except (FileNotFoundError, KeyError, RuntimeError, TypeError, ValueError) as err:
        sys.exit(f'error: {err}')
    report = MediaInferencer(predict, dataset_meta, args.out_dir, args.score_thr, args.batch_size)(args.inputs)
    print(f'{report.images} images and frames, {len(report.records)} detections above {args.score_thr}: '
          f'{args.out_dir}/detections.json; {len(report.drawn)} drawn files in {args.out_dir}')
    if report.failed:
        sys.exit(f'{len(report.failed)} input(s) skipped: ' + ', '.join(path for path, _ in report.failed))


if __name__ == '__main__':
    filter_known_warnings()
    main()
