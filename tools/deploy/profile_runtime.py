"""Where ONNX Runtime and OpenVINO spend a detector's time: milliseconds per operator type, from each runtime's
own profiler (ONNX Runtime's profiling, OpenVINO's performance counters), to say why the runtimes disagree.

    python tools/deploy/profile_runtime.py CONFIG [--checkpoint CKPT] [--resolution 320] [--threads 2]
        [--runtimes onnxruntime openvino] [--precisions fp32 [int8]] [--options parallel ...] [--runs 10]
        [--cfg-options key=value ...]

The detector is built as the benchmark builds it (seeded initial weights, or --checkpoint), folded, exported
at RESOLUTION x RESOLUTION, batch 1 (and for int8 quantized on the benchmark's calibration images: the
config's val images where there, else random ones), and run --runs times in each runtime after one warm-up,
on the benchmark's random image. Prints one table per runtime and precision: per operator type its ms per
run, share, calls and kernels (OpenVINO's node types are those after its fusions: a SiLU or Mish fused into
its convolution is not listed apart). The profilers add their own overhead: compare the operators within a
table and the runtimes by their shares, not the totals with a timed benchmark row. Run it on an idle machine.
--options names stream-parallel settings (onnxruntime: parallel; openvino: tensor_parallel, unpinned), each
applied in the runtime that has it.
"""
import argparse
import os.path as osp
import tempfile

import torch
from mmengine.config import DictAction

from parnet_det.apis import build_detector
from parnet_det.benchmark.inputs import synthetic_images
from parnet_det.benchmark.variants import benchmark_calibration
from parnet_det.deploy import PRECISIONS, RUNTIMES, SESSION_OPTIONS, RuntimeDetector, runtime_missing
from parnet_det.deploy.profiling import profile_operators
from parnet_det.inference import DetectorEngine
from parnet_det.utils.checkpoint import CheckpointError
from parnet_det.utils.cli_args import path_arg, positive_int, user_errors
from parnet_det.utils.config import load_config
from parnet_det.utils.warnings_filter import filter_known_warnings


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', type=path_arg, help='a single-stage detector config')
    parser.add_argument('--checkpoint', type=path_arg, help='its weights (default: seeded initial weights)')
    parser.add_argument('--resolution', type=positive_int, default=320, help='square input side')
    parser.add_argument('--threads', type=positive_int, help="the runtimes' intra-op threads (default: their own)")
    parser.add_argument('--runtimes', nargs='+', choices=list(RUNTIMES), default=list(RUNTIMES))
    parser.add_argument('--precisions', nargs='+', choices=PRECISIONS, default=['fp32'])
    parser.add_argument('--options', nargs='+', default=[], metavar='SETTING',
                        choices=sorted({name for names in SESSION_OPTIONS.values() for name in names}),
                        help='stream-parallel settings, each in the runtime that has it')
    parser.add_argument('--runs', type=positive_int, default=10, help='profiled runs after one warm-up')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config settings (key=value)')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    with user_errors(CheckpointError, ImportError, KeyError, OSError, ValueError):
        for runtime in args.runtimes:
            for precision in args.precisions:
                missing = runtime_missing(runtime, precision)
                if missing is not None:
                    raise ImportError(missing)
        cfg = load_config(args.config, args.cfg_options)
        torch.manual_seed(0)  # the benchmark's weights
        model = build_detector(cfg, args.checkpoint)
        side = args.resolution
        pixels = None
        with tempfile.TemporaryDirectory(prefix='parnet_det_profile_') as folder:
            for runtime in args.runtimes:
                options = [option for option in args.options if option in SESSION_OPTIONS[runtime]]
                for precision in args.precisions:
                    engine = DetectorEngine(model, cfg, 'cpu', input_size=(side, side))
                    calibration, source = benchmark_calibration(cfg, side) if precision == 'int8' else ((), '')
                    detector = RuntimeDetector.export(
                        engine, runtime, osp.join(folder, 'model.onnx'), threads=args.threads, precision=precision,
                        calibration=calibration, cache_dir=osp.join(folder, 'int8'), session_options=options)
                    if pixels is None:
                        pixels, _ = detector.pixels(synthetic_images(side, 1))
                    graph = detector.quantized.path if detector.quantized else osp.join(folder, 'model.onnx')
                    profile = profile_operators(runtime, graph, pixels, args.runs, args.threads, options)
                    print(f'\n## {osp.basename(args.config)}, {side} px, batch 1, {precision}'
                          f'{" (calibrated on " + source + ")" if source else ""}, threads {args.threads or "default"}'
                          f'{", " + ", ".join(options) if options else ""}\n')
                    print(profile.table())


if __name__ == '__main__':
    filter_known_warnings()
    main()
