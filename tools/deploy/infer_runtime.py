"""Detect objects in images and videos with the exported detector in ONNX Runtime or OpenVINO: what
`tools/infer.py` does in PyTorch, with the same outputs (drawn copies, detections.jsonl and detections.json)
through the same MediaInferencer, and the same detections.

    python tools/deploy/infer_runtime.py CONFIG CHECKPOINT INPUT [INPUT ...] --runtime onnxruntime|openvino
        [--onnx MODEL.onnx] [--out-dir DIR] [--score-thr 0.3] [--batch-size 1] [--no-draw] [--threads N]
        [--precision fp32|int8 [--calibration-images 300] [--int8-cache DIR]] [--cfg-options key=value ...]

Each image is letterboxed as the config's test pipeline does it, as in tools/test.py and tools/infer.py: a
fixed input for the YOLOX and RTMDet configs, and for the YOLOv4-CSP family (RectLetterbox) each image
centred in its own rectangle, a batch of several padded to the largest. The detector is folded and exported
with a dynamic batch (and for a RectLetterbox config a dynamic height and width), or --onnx names a graph
exported before from the same config and checkpoint with tools/deploy/export_onnx.py --dynamic-batch
(without --shape for a RectLetterbox config; a graph of a fixed size is refused there). It runs on the CPU
in fp32: the letterbox on the host, normalisation, network and box decoding in the graph, then the head's
post-processing on the host (YOLOX's batched NMS, or the multi-label test of YOLOv4-CSP / YOLOR and
RTMDet). With --precision int8 the graph is first quantized for the runtime (ONNX Runtime's static QDQ,
OpenVINO through NNCF: the convolutions in int8, the rest fp32; see parnet_det/deploy/quantize.py),
calibrated on --calibration-images of the config's val images (evenly spaced; the val set whole where
smaller), which must be there; the calibration time is printed apart, and --int8-cache keeps the quantized
graph for the next run with the same graph, images and settings. Needs requirements/deploy.txt; a missing
runtime is said in one line.
"""
import argparse
import contextlib
import sys

from mmengine.config import DictAction

from parnet_det.apis.inferencer import MediaInferencer, locked_outputs
from parnet_det.apis.runtime_predictor import load_runtime_predictor
from parnet_det.deploy import DEFAULT_CALIBRATION_IMAGES, PRECISIONS, RUNTIMES
from parnet_det.utils.checkpoint import CheckpointError
from parnet_det.utils.cli_args import path_arg, positive_int, unit_interval, user_errors
from parnet_det.utils.warnings_filter import filter_known_warnings
from parnet_det.utils.work_dir_lock import WorkDirInUseError


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', type=path_arg, help='detector config (single-stage)')
    parser.add_argument('checkpoint', type=path_arg, help='its weights, training or deploy form')
    parser.add_argument('inputs', type=path_arg, nargs='+', help='image files, folders and videos')
    parser.add_argument('--runtime', choices=list(RUNTIMES), required=True, help='the runtime to run the graph in')
    parser.add_argument('--onnx', type=path_arg, help='a graph exported before (with --dynamic-batch, and without '
                        '--shape for a RectLetterbox config); default: export now')
    parser.add_argument('--out-dir', type=path_arg, default='outputs', help='new or empty folder for the outputs')
    parser.add_argument('--score-thr', type=unit_interval, default=0.3, help='detections scoring under it are not kept')
    parser.add_argument('--batch-size', type=positive_int, default=1, help='images per runtime call')
    parser.add_argument('--no-draw', dest='draw', action='store_false', help='write only the detections')
    parser.add_argument('--threads', type=positive_int, help="the runtime's threads (default: its own)")
    parser.add_argument('--precision', choices=PRECISIONS, default='fp32',
                        help='fp32: the exported graph; int8: quantized for the runtime, calibrated on val images')
    parser.add_argument('--calibration-images', type=positive_int,
                        help=f'int8: val images to calibrate on (default {DEFAULT_CALIBRATION_IMAGES}, NNCF\'s)')
    parser.add_argument('--int8-cache', type=path_arg, metavar='DIR',
                        help='int8: keep the quantized graph in DIR and reuse it')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config settings (key=value)')
    args = parser.parse_args(argv)
    if args.precision != 'int8' and (args.calibration_images or args.int8_cache):
        parser.error('--calibration-images and --int8-cache are for --precision int8')
    return args


def main(argv=None):
    args = parse_args(argv)
    with contextlib.ExitStack() as run:
        with user_errors(CheckpointError, ImportError, KeyError, OSError, ValueError, WorkDirInUseError):
            # As tools/infer.py: before anything is built or written; one run per --out-dir, held to the end.
            media = run.enter_context(locked_outputs(args.inputs, args.out_dir))
            predict, dataset_meta = load_runtime_predictor(
                args.config, args.checkpoint, args.runtime, args.onnx, args.cfg_options, args.score_thr,
                args.threads, args.batch_size, args.precision,
                args.calibration_images or DEFAULT_CALIBRATION_IMAGES, args.int8_cache)
            inferencer = MediaInferencer(predict, dataset_meta, args.out_dir, args.score_thr, args.batch_size,
                                         args.draw)
        if predict.quantized is not None:
            quantized = predict.quantized
            print(f'int8: calibrated on {quantized.calibration_images} val images in {quantized.calibration_s:.1f} s'
                  f'{" (before: from the cache)" if quantized.cached else ""}; {quantized.scope}')
        report = inferencer.run(media)
    print(f'{report.images} images in {args.runtime} {predict.session.version} ({predict.precision}); detections '
          f'in {report.json_path}')
    if report.failed:
        sys.exit(f'{len(report.failed)} input(s) skipped: ' + ', '.join(path for path, _ in report.failed))

if __name__ == '__main__':
    filter_known_warnings()
    main()
