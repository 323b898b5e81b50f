"""COCO box AP of a trained detector in ONNX Runtime and OpenVINO, fp32 against INT8: the accuracy check of INT8.

    python tools/deploy/int8_accuracy.py CONFIG CHECKPOINT [--runtimes onnxruntime openvino]
        [--int8 default [keep_sse_float keep_first_last_float per_tensor_weights no_bias_correction]]
        [--calibration-images 300] [--threads N] [--out records.jsonl] [--cfg-options key=value ...]

The detector is folded and exported once (dynamic batch), run in each runtime in fp32, then quantized for
each runtime (the convolutions in int8, the rest fp32: parnet_det/deploy/quantize.py) on
--calibration-images of the config's val images (evenly spaced; the val set whole where smaller), and every
graph scored on the whole val set through the same letterbox and post-processing by the config's val
evaluator (mmdet's CocoMetric). --int8 names the INT8 forms to measure besides the default: SSE gates or
first and last convolutions kept in float, ONNX Runtime's per-tensor weights, NNCF without bias correction
(each in the runtimes it applies to). Prints a table (AP change = INT8 minus the runtime's fp32) and, with
--out, writes one JSON record per graph. The config's val set must be there; needs requirements/deploy.txt.
"""
import argparse
import os
import os.path as osp

from mmengine.config import DictAction

from parnet_det.benchmark.runtime_table import int8_accuracy_table
from parnet_det.deploy import DEFAULT_CALIBRATION_IMAGES, RUNTIMES
from parnet_det.deploy.runtime_accuracy import INT8_REMEDIES, int8_accuracy
from parnet_det.utils.checkpoint import CheckpointError
from parnet_det.utils.cli_args import path_arg, positive_int, user_errors
from parnet_det.utils.fileio import atomic_write, check_writable_file, strict_json
from parnet_det.utils.warnings_filter import filter_known_warnings


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', type=path_arg, help='a trained single-stage detector\'s config (its val set there)')
    parser.add_argument('checkpoint', type=path_arg, help='its trained weights')
    parser.add_argument('--runtimes', nargs='+', choices=list(RUNTIMES), default=list(RUNTIMES))
    parser.add_argument('--int8', nargs='+', choices=list(INT8_REMEDIES), default=['default'], metavar='FORM',
                        help=f'INT8 forms to measure: {", ".join(INT8_REMEDIES)}')
    parser.add_argument('--calibration-images', type=positive_int, default=DEFAULT_CALIBRATION_IMAGES,
                        help='val images to calibrate on (default: NNCF\'s 300; the val set whole where smaller)')
    parser.add_argument('--threads', type=positive_int, help="the runtimes' threads (default: their own)")
    parser.add_argument('--out', type=path_arg, help='JSON lines file for the records')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config settings (key=value)')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    with user_errors(CheckpointError, ImportError, KeyError, OSError, ValueError):
        if args.out:  # before the minutes of measuring
            check_writable_file(args.out, parent_may_be_missing=True, inputs=[args.config, args.checkpoint])
        records = int8_accuracy(args.config, args.checkpoint, args.runtimes, args.int8, args.calibration_images,
                                args.cfg_options, args.threads)
    print(int8_accuracy_table(records))
    if args.out:
        os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
        with atomic_write(args.out, 'w') as file:
            file.writelines(strict_json(record) + '\n' for record in records)
        print(f'records in {args.out}')


if __name__ == '__main__':
    filter_known_warnings()
    main()
