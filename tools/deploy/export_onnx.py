"""Export a YOLO-style detector, folded, to ONNX and check the file against PyTorch with onnxruntime.

    python tools/deploy/export_onnx.py CONFIG CHECKPOINT OUT.onnx [--shape H [W]] [--batch-size 1]
        [--dynamic-batch] [--opset N] [--no-check] [--box-atol PX] [--score-atol X]
        [--cfg-options key=value ...]

CHECKPOINT is a training checkpoint (folded here) or a deploy one from tools/reparameterize.py.
The graph takes `images`: letterboxed BGR pixels, float32 (B, 3, H, W) (--shape; default the
config's test Resize scale, or, for a config whose test letterboxes each image to its own rectangle
(RectLetterbox: the YOLOv4-CSP family), any H and W that are multiples of its stride, the test's
geometry, which tools/deploy/infer_runtime.py needs), and returns `boxes` (B, N, 4, xyxy in input pixels) and `scores`
(B, N, classes); normalisation and box decoding are inside it, NMS is not: run the head's
post-processing on the outputs, parnet_det.inference.postprocess_dense_detections for YOLOX heads,
postprocess_multilabel_detections for the YOLOv4-CSP family (centred letterbox, official test), see
parnet_det/deploy/onnx_export.py. Unless --no-check, the file is run with onnxruntime on the CPU
against PyTorch on random letterboxed images (and, with --dynamic-batch, on one image more; with a
dynamic height and width, on a portrait rectangle too);
the tool exits with an error if they differ beyond --box-atol / --score-atol. Needs
requirements/deploy.txt.
"""
import argparse
import sys
import time

from mmengine.config import DictAction

from parnet_det.apis.runtime_predictor import stamp_checkpoint
from parnet_det.deploy import check_onnx_against_pytorch, export_onnx
from parnet_det.utils.cli_args import path_arg, positive_int, user_errors
from parnet_det.utils.fileio import check_apart_from_inputs
from parnet_det.utils.warnings_filter import filter_known_warnings


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', type=path_arg, help='detector config (YOLOX-style head)')
    parser.add_argument('checkpoint', type=path_arg, help='its weights, training or deploy form')
    parser.add_argument('out', type=path_arg, help='ONNX file to write')
    parser.add_argument('--shape', type=positive_int, nargs='+', metavar='SIDE',
                        help='input height and width (one value: a square); default the test Resize scale, or '
                        'with a RectLetterbox a dynamic height and width')
    parser.add_argument('--batch-size', type=positive_int, default=1, help='batch size of the graph')
    parser.add_argument('--dynamic-batch', action='store_true', help='make the batch dimension dynamic')
    parser.add_argument('--opset', type=positive_int, help="ONNX opset (default: torch's exporter's)")
    parser.add_argument('--no-check', dest='check', action='store_false',
                        help='skip the onnxruntime check against PyTorch')
    parser.add_argument('--box-atol', type=float, default=0.05, metavar='PX',
                        help='tolerance of the check on boxes, in input pixels')
    parser.add_argument('--score-atol', type=float, default=1e-3, help='tolerance of the check on scores')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, as in mmdet tools (key=value)')
    args = parser.parse_args(argv)
    if args.shape is not None and len(args.shape) > 2:
        parser.error(f'--shape takes H and W (or one side), got {len(args.shape)} values')
    return args


def format_check(check) -> str:
    """A short table of one check."""
    detections = '=' if check.detections_match else '!='
    return '\n'.join([
        f'batch of {check.batch_size}: onnxruntime (CPU) against PyTorch',
        f'  {"output":<10} {"max abs error":>14} {"rel error":>10} {"tolerance":>10}',
        f'  {"boxes":<10} {check.boxes_max_abs:>14.3g} {check.boxes_rel:>10.3g} {check.box_atol:>10.3g}',
        f'  {"scores":<10} {check.scores_max_abs:>14.3g} {check.scores_rel:>10.3g} {check.score_atol:>10.3g}',
        f'  detections after NMS per image: onnx {check.onnx_detections} {detections} pytorch '
        f'{check.pytorch_detections}, box error {check.detection_box_error:.3g} px, '
        f'{check.label_differences} with another label (near-ties between classes)',
        f'  {"passed" if check.passed else "FAILED"}',
    ])


def main(argv=None):
    args = parse_args(argv)
    start = time.perf_counter()
    with user_errors(ImportError, KeyError, OSError, RuntimeError, ValueError):
        check_apart_from_inputs(args.out, [args.config, args.checkpoint])
        exported = export_onnx(args.config, args.checkpoint, args.out, input_size=args.shape,
                               batch_size=args.batch_size, dynamic_batch=args.dynamic_batch, opset=args.opset,
                               cfg_options=args.cfg_options)
        stamp_checkpoint(exported.path, args.checkpoint)  # infer_runtime.py --onnx refuses it under another
    shape = 'x'.join({'batch': 'B', 'height': 'H', 'width': 'W'}.get(side, str(side)) for side in exported.input_shape)
    dynamic = [name for name, side in (('B', 'batch'), ('H, W', 'height')) if side in exported.input_shape]
    dynamic = f' (dynamic {", ".join(dynamic)})' if dynamic else ''
    print(f'wrote {exported.path} in {time.perf_counter() - start:.1f} s (opset {exported.opset}): input '
          f'{exported.input_name} {shape}{dynamic} BGR pixels, outputs {" and ".join(exported.output_names)}; '
          'NMS runs outside the graph (parnet_det.inference.postprocess_dense_detections, or '
          'postprocess_multilabel_detections for YOLOv4CSPHead)')
    if not args.check:
        return
    batch_sizes = [args.batch_size, args.batch_size + 1] if args.dynamic_batch else [args.batch_size]
    inputs = [exported.module.letterboxed_inputs(n) for n in batch_sizes]
    if 'height' in exported.input_shape:  # any rectangle: a portrait one too
        inputs.append(inputs[0].transpose(2, 3).contiguous())
    try:
        checks = [
            check_onnx_against_pytorch(exported.path, exported.module, batch, box_atol=args.box_atol,
                                       score_atol=args.score_atol) for batch in inputs
        ]
    except ImportError as err:
        sys.exit(f'error: {err} (or pass --no-check)')
    for check in checks:
        print(format_check(check))
    if not all(check.passed for check in checks):
        sys.exit(f'error: the ONNX outputs differ from PyTorch beyond tolerance ({exported.path} is kept)')


if __name__ == '__main__':
    filter_known_warnings()
    main()
