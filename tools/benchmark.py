"""Speed of detectors: network-only latency, end-to-end throughput, or a training step, on the CPU or a
CUDA GPU.

    python tools/benchmark.py CONFIG [CHECKPOINT] [--baseline CONFIG ...] [--baseline-checkpoint CONFIG=CKPT ...]
        [--mixed-workloads] [--mode infer|train]
        [--resolutions 320 416 512 640] [--batch-sizes 1] [--precision fp32 [fp16 bf16]]
        [--forms deploy [train] | --deploy | --no-deploy] [--variants mmdet [eager streams+cuda_graph ...]]
        [--candidates 1000] [--with-cp off [on]] [--device cpu|cuda] [--row-time-limit S]
        [--warmup 5] [--iters 1] [--repeats 5] [--min-repeat-time S] [--threads N] [--work-dir DIR]
        [--cfg-options key=value ...]

Variants: 'mmdet' runs the detector through mmdet (model._forward / test_step, autocast for
fp16/bf16); any other is parnet_det.inference.DetectorEngine with fast paths joined by '+':
'eager' (none), 'streams' (ParNet's streams on parallel CUDA streams), 'channels_last', 'compile'
(torch.compile), 'cuda_graph'; e.g. --variants mmdet eager streams+cuda_graph
channels_last+compile. The engine casts the network to fp16/bf16.

Writes results.json, results.csv, results.md (img/s ratios against the first --baseline and against
the first variant) and fps_vs_resolution.png into --work-dir, and each row to rows.jsonl as soon as
it is measured (default
work_dirs/benchmark/<timestamp>). Inputs are random
images; no dataset is needed. fp16 is refused on the CPU (use bf16 there). --cfg-options applies
to every config. What each measurement covers (the same timer scope in every variant and runtime,
recorded per row as timed_scope): parnet_det/benchmark/variants.py. Runtime rows (onnxruntime,
openvino; their INT8 graphs onnxruntime-int8, openvino-int8, calibrated once per model and size; a
runtime's stream-parallel settings after '+': onnxruntime+parallel, openvino+tensor_parallel,
openvino+unpinned) check their outputs against PyTorch's first; a row that fails is kept as
'parity_failed', out of every table and ratio, and the command exits non-zero (INT8 rows: only on
outputs that are not finite; their accuracy is tools/deploy/int8_accuracy.py's, on trained detectors).

Folding: the deploy form folds every model alike (ParNet's blocks and the BatchNorm of every
ConvModule); rows count what was folded and any BatchNorm left straight after a convolution.

Timing: per setting the models alternate repeat by repeat (A B A B ...); each repeat lasts at least
--min-repeat-time seconds (default 1 on the CPU, 0.2 on a GPU) and --iters calls; ratios to the
baseline come with their spread over the repeats, and say "faster"/"slower" only where it excludes 1.

Post-processing work: without checkpoints every model's head is set, by the same method, so that
about --candidates boxes per image pass the score threshold (parnet_det/benchmark/workload.py); with
CHECKPOINT and --baseline-checkpoint every model runs its real outputs. A checkpoint for some models
and not for others is refused unless --mixed-workloads (then every row and table says so). Each row
records the candidates NMS received and the detections it kept.

--mode train times one optimizer step (forward, loss, backward, step; AMP for fp16/bf16) at the first
--resolutions value and the config's per-GPU batch (or --batch-sizes), with and without the backbone's
gradient checkpointing (--with-cp); see parnet_det/benchmark/training.py. The whole comparison matrix
is tools/benchmark_matrix.py.
"""
import argparse
import os
import os.path as osp
import sys
import time

from mmengine.config import DictAction

from parnet_det.benchmark import (
    BenchmarkSettings,
    TrainSettings,
    check_settings,
    check_train_settings,
    load_model_specs,
    run_benchmark,
    run_training_benchmark,
    write_report,
)
from parnet_det.benchmark.matrix import row_appender
from parnet_det.benchmark.report import benchmark_meta
from parnet_det.benchmark.rows import add_baseline_ratios, add_variant_speedups, measured, parity_failures
from parnet_det.benchmark.settings import DEFAULT_CANDIDATES, FORMS, MMDET_VARIANT, check_forms, check_workloads
from parnet_det.inference import PRECISION_DTYPES
from parnet_det.utils.cli_args import non_negative_int, path_arg, positive_float, positive_int, user_errors
from parnet_det.utils.warnings_filter import filter_known_warnings


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', type=path_arg, help='detector config')
    parser.add_argument('checkpoint', type=path_arg, nargs='?',
                        help='weights of CONFIG, loaded before folding (optional)')
    parser.add_argument('--baseline', action='append', default=[], metavar='CONFIG', type=path_arg,
                        help='a config to compare with (repeatable; ratios are against the first)')
    parser.add_argument('--baseline-checkpoint', action='append', default=[], metavar='CONFIG=CKPT',
                        type=config_checkpoint, help='weights of a --baseline (repeatable; CONFIG as given there)')
    parser.add_argument('--mixed-workloads', action='store_true',
                        help='allow checkpoints for some models and the controlled workload for others')
    parser.add_argument('--mode', choices=['infer', 'train'], default='infer',
                        help="infer: network and end-to-end rows (default); train: one optimizer step")
    parser.add_argument('--resolutions', type=positive_int, nargs='+', default=[320, 416, 512, 640],
                        metavar='SIDE', help='square input sides in pixels')
    parser.add_argument('--batch-sizes', type=positive_int, nargs='+', metavar='N',
                        help="images per batch (default 1; --mode train: the config's per-GPU batch)")
    parser.add_argument('--precision', '--precisions', dest='precisions', nargs='+', default=['fp32'],
                        choices=list(PRECISION_DTYPES),
                        help='fp16 / bf16: autocast for the mmdet variant, the network cast for the engine variants')
    forms = parser.add_mutually_exclusive_group()
    forms.add_argument('--forms', nargs='+', choices=FORMS,
                       help="'deploy': ParNet branches folded; 'train': as trained; both to compare")
    forms.add_argument('--deploy', dest='forms', action='store_const', const=['deploy'],
                       help='measure the folded form only (default)')
    forms.add_argument('--no-deploy', dest='forms', action='store_const', const=['train'],
                       help='measure the training form only')
    parser.set_defaults(forms=['deploy'])
    parser.add_argument('--variants', nargs='+', default=[MMDET_VARIANT], metavar='VARIANT',
                        help="'mmdet' and/or engine fast paths joined with + (eager, streams, channels_last, "
                        'compile, cuda_graph); the first is the reference of the speed-up column')
    parser.add_argument('--candidates', type=non_negative_int, default=DEFAULT_CANDIDATES,
                        help='boxes per image over the score threshold that a model without checkpoint is set to '
                        'give NMS (0: its initial head)')
    parser.add_argument('--with-cp', nargs='+', choices=['off', 'on'], default=['off', 'on'],
                        help="--mode train: the backbone's gradient checkpointing off and/or on")
    parser.add_argument('--device', default='cpu', help='cpu, cuda or cuda:N')
    parser.add_argument('--row-time-limit', type=positive_float, metavar='S',
                        help='seconds one row may take; a row over it is kept as a timeout and the run goes on')
    parser.add_argument('--warmup', type=non_negative_int, default=5, help='untimed iterations first')
    parser.add_argument('--iters', type=positive_int, default=1, help='iterations per timed repeat, at least')
    parser.add_argument('--repeats', type=positive_int, default=5,
                        help='timed repeats, the models alternating (median, min, max; ratio spreads)')
    parser.add_argument('--min-repeat-time', type=float, metavar='S',
                        help='seconds a timed repeat lasts at least (default 1 on the CPU, 0.2 on a GPU; 0: '
                        'exactly --iters iterations)')
    parser.add_argument('--threads', type=positive_int,
                        help="torch's CPU threads (default: torch's choice; recorded in the results)")
    parser.add_argument('--work-dir', type=path_arg, help='output folder (default work_dirs/benchmark/<timestamp>)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings of every config, key=value')
    return parser.parse_args(argv)


def config_checkpoint(value: str) -> tuple:
    """CONFIG=CKPT -> (CONFIG, CKPT), ``~`` expanded in both."""
    config, separator, checkpoint = value.partition('=')
    if not separator or not config or not checkpoint:
        raise argparse.ArgumentTypeError(f'{value}: give CONFIG=CHECKPOINT, e.g. '
                                         'configs/yolov4_csp_coco.py=yolov4_csp.pth')
    return path_arg(config), path_arg(checkpoint)


def settings_from_args(args):
    """The inference settings, and for --mode train the training settings."""
    settings = BenchmarkSettings(resolutions=args.resolutions, batch_sizes=args.batch_sizes or [1],
                                 precisions=args.precisions, forms=args.forms, variants=args.variants,
                                 device=args.device, warmup=args.warmup, iters=args.iters, repeats=args.repeats,
                                 min_repeat_s=args.min_repeat_time, threads=args.threads,
                                 candidates=args.candidates, row_time_limit_s=args.row_time_limit,
                                 mixed_workloads=args.mixed_workloads)
    if args.mode != 'train':
        return settings, None
    if len(args.resolutions) > 1 or len(args.batch_sizes or []) > 1:
        raise ValueError('--mode train measures one input size and one batch size: give one --resolutions value '
                         'and at most one --batch-sizes value')
    batch_size = args.batch_sizes[0] if args.batch_sizes else None
    training = TrainSettings(resolution=args.resolutions[0], batch_size=batch_size, precisions=args.precisions,
                             with_cp=[value == 'on' for value in args.with_cp], device=args.device,
                             warmup=args.warmup, iters=args.iters, repeats=args.repeats,
                             row_time_limit_s=args.row_time_limit)
    return settings, training


def main(argv=None):
    args = parse_args(argv)
    # Refuse what cannot run before measuring anything, and before any output exists.
    with user_errors(FileNotFoundError, ValueError):
        settings, training = settings_from_args(args)
        models = load_model_specs(args.config, args.checkpoint, args.baseline, args.cfg_options,
                                  dict(args.baseline_checkpoint))
        check_settings(settings)
        check_forms(models, settings.forms)
        if training is not None and any(spec.checkpoint is not None for spec in models):
            raise ValueError('--mode train times a step from the initial weights: leave out CHECKPOINT and '
                             '--baseline-checkpoint')
        if training is None:
            check_workloads(models, args.mixed_workloads)
        if training is not None:
            check_train_settings(training)
    work_dir = args.work_dir or osp.join('work_dirs', 'benchmark', time.strftime('%Y%m%d_%H%M%S'))
    baseline = models[1].name if args.baseline else None
    command = sys.orig_argv if argv is None else [sys.executable, __file__, *argv]
    # Collected first: a failure there must not cost the measurements.
    meta = benchmark_meta(command, settings, baseline, training)
    # Each row is also appended to rows.jsonl as it is measured: a run cut short keeps what it measured.
    os.makedirs(work_dir, exist_ok=True)
    keep_row = row_appender(osp.join(work_dir, 'rows.jsonl'))
    if training is None:
        rows = run_benchmark(models, settings, on_row=keep_row)
    else:
        rows = run_training_benchmark(models, training, on_row=keep_row)
    add_baseline_ratios(rows, baseline)
    add_variant_speedups(rows, args.variants[0])
    for path in write_report(work_dir, meta, rows):
        print(f'wrote {path}')
    # A runtime's failed parity first (it names the rows), then any other row not measured (a baseline's among
    # them: no ratio): either fails the run, whatever was written.
    failures = parity_failures(rows)
    if failures:
        sys.exit(f'error: {failures}')
    failed = len(rows) - len(measured(rows))
    if failed:
        which = f'all {len(rows)}' if failed == len(rows) else f'{failed} of the {len(rows)}'
        sys.exit(f'error: {which} rows failed or timed out (their errors: {osp.join(work_dir, "results.md")})')


if __name__ == '__main__':
    filter_known_warnings()
    main()
