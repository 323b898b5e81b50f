"""The whole speed comparison in one command, resumable: ParNet-XL, XL-CSP, S, M and the wide-neck XL
against the baseline of their recipe, at several resolutions, batch sizes, precisions and variants,
plus training throughput.

    python tools/benchmark_matrix.py --preset gpu --work-dir work_dirs/matrix_h100 [--archive matrix.tar.gz]
    python tools/benchmark_matrix.py --preset cpu --work-dir work_dirs/matrix_cpu

Presets (parnet_det/benchmark/matrix.py): 'gpu' = 512/640/1280 px x batch 1/32 x fp16/fp32 x
mmdet/eager/channels_last+cuda_graph, 5 repeats of at least 0.2 s, training at 640 px with the
recipe's batch (AMP fp16, with_cp off/on); 'cpu' = 320/512 px, batch 1, fp32,
mmdet/eager/channels_last, 5 repeats of at least 1 s, training at 320 px batch 2 (with_cp off).
Per setting the models' repeats alternate (A B A B ...); each model is compared with the baseline
of its recipe (the same neck, head and training recipe), ratios with their spread.

Every row is appended to WORK_DIR/rows.jsonl as soon as it is measured; running the same command
again measures only the rows it lacks (timed-out or failed rows too with --retry-failed). Each row has its own
time limit (--row-time-limit, else the preset's). At the end: results.{json,csv,md},
fps_vs_resolution.png, regimes.md (each model's speed ratio to its baseline, per regime, with spreads),
latency_vs_resolution.png, throughput_vs_batch.png, and with --archive one .tar.gz of all of them.
A runtime row whose parity with PyTorch failed is kept out of every table and ratio, and the command
exits non-zero while rows.jsonl holds one.
"""
import argparse
import contextlib
import dataclasses
import os
import os.path as osp
import sys
import tarfile

from parnet_det.benchmark import PRESETS, check_settings, check_train_settings, read_rows, run_matrix
from parnet_det.benchmark.rows import latest_rows, parity_failures
from parnet_det.benchmark.settings import MODES, pair_recipe
from parnet_det.utils.cli_args import path_arg, positive_float, positive_int, user_errors
from parnet_det.utils.fileio import DiskFullError, atomic_write, check_writable_file, file_starts_with
from parnet_det.utils.warnings_filter import filter_known_warnings
from parnet_det.utils.work_dir_lock import WorkDirInUseError, work_dir_lock

# Held in the work dir while a run measures into it (left out of the archive).
MATRIX_LOCK = '.matrix.lock'
CONFIG_DIR = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'configs')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--preset', choices=list(PRESETS), required=True, help='what to measure')
    parser.add_argument('--work-dir', type=path_arg, required=True,
                        help='keeps rows.jsonl (resumed from) and the reports')
    parser.add_argument('--models', nargs='+', metavar='NAME',
                        help='config names under configs/ (default: the preset\'s; the baseline of each one\'s '
                        'recipe is added)')
    parser.add_argument('--baseline', metavar='NAME',
                        help='with --models: compare them with this config name instead of their recipes\' '
                        'baselines (e.g. demo/yolo_cspdarknet53s_tiny_synthetic for a dry run)')
    parser.add_argument('--device', help="override the preset's device (e.g. cuda:1)")
    parser.add_argument('--row-time-limit', type=positive_float, metavar='S', help="override the preset's")
    parser.add_argument('--min-repeat-time', type=float, metavar='S',
                        help="override the preset's seconds per timed repeat (e.g. short for a dry run)")
    parser.add_argument('--retry-failed', action='store_true', help='measure timed-out or failed rows again')
    parser.add_argument('--resolutions', type=positive_int, nargs='+', metavar='SIDE',
                        help="only these of the preset's input sides (e.g. the most important first, in a call of "
                        'its own)')
    parser.add_argument('--batch-sizes', type=positive_int, nargs='+', metavar='N', help="only these of the preset's")
    parser.add_argument('--precisions', nargs='+', metavar='P', help="only these of the preset's")
    parser.add_argument('--variants', nargs='+', metavar='V',
                        help="instead of the preset's: 'mmdet', fast paths joined with + (e.g. "
                        "channels_last+max_autotune+cuda_graph: torch.compile max-autotune in a CUDA graph), "
                        'onnxruntime, openvino, their INT8 graphs onnxruntime-int8, openvino-int8, and stream-parallel '
                        'settings after + (onnxruntime+parallel, openvino+tensor_parallel, openvino+unpinned)')
    parser.add_argument('--modes', nargs='+', choices=list(MODES),
                        help='only these modes (network: no NMS, RTMDet\'s protocol; end2end); default both')
    parser.add_argument('--part', choices=['all', 'inference', 'training', 'report'], default='all',
                        help='measure only the inference or only the training rows, or nothing (report: only '
                        'write the reports of the rows measured so far); the reports always cover all rows')
    parser.add_argument('--archive', type=path_arg,
                        help='also pack the work dir into this .tar.gz (one file to copy back)')
    return parser.parse_args(argv)


def preset_from_args(args):
    preset = PRESETS[args.preset]
    overrides = {key: value for key, value in (('device', args.device), ('row_time_limit_s', args.row_time_limit))
                 if value is not None}
    timing = {} if args.min_repeat_time is None else dict(min_repeat_s=args.min_repeat_time)
    paths = {field: tuple(asked) for field, asked in (('variants', args.variants), ('modes', args.modes)) if asked}
    inference = dataclasses.replace(preset.inference, **overrides, **timing, **paths,
                                    **subsets(preset.inference, args))
    training = dataclasses.replace(preset.training, **overrides)
    # A part left out measures nothing: no precision to measure at.
    if args.part in ('inference', 'report'):
        training = dataclasses.replace(training, precisions=())
    if args.part in ('training', 'report'):
        inference = dataclasses.replace(inference, precisions=())
    recipes = preset.recipes
    if args.baseline and not args.models:
        raise ValueError('--baseline NAME goes with --models: the models to compare with it')
    if args.models:
        missing = [name for name in [*args.models, *filter(None, [args.baseline])]
                   if not osp.isfile(osp.join(CONFIG_DIR, f'{name}.py'))]
        if missing:
            raise FileNotFoundError(f'no config configs/{missing[0]}.py; --models takes config names, '
                                    'e.g. yolo_parnet_xl_coco')
        if args.baseline:
            recipe = pair_recipe(args.baseline, args.models, recipes)
            return dataclasses.replace(preset, inference=inference, training=training, recipes=[recipe])
        unpaired = [name for name in args.models if name not in preset.models]
        if unpaired:
            raise ValueError(f'--models {unpaired[0]}: in no recipe of the preset (' + '; '.join(
                f'{recipe.baseline}: {", ".join(recipe.models)}' for recipe in recipes) + ')')
        # Each asked model with its recipe's baseline: ratios need it.
        recipes = [dataclasses.replace(recipe, models=[name for name in recipe.models if name in args.models])
                   for recipe in recipes if {recipe.baseline, *recipe.models} & set(args.models)]
    return dataclasses.replace(preset, inference=inference, training=training, recipes=recipes)


def subsets(settings, args) -> dict:
    """The preset's resolutions, batch sizes and precisions narrowed to those asked for (each must be the preset's)."""
    narrowed = {}
    for field, asked in (('resolutions', args.resolutions), ('batch_sizes', args.batch_sizes),
                         ('precisions', args.precisions)):
        if asked:
            unknown = [value for value in asked if value not in getattr(settings, field)]
            if unknown:
                raise ValueError(f'--{field.replace("_", "-")} {" ".join(map(str, unknown))}: not in the preset '
                                 f'({" ".join(map(str, getattr(settings, field)))})')
            narrowed[field] = tuple(asked)
    return narrowed


def write_archive(work_dir: str, archive: str) -> None:
    """``archive`` (.tar.gz) of the work dir's files, written under an exclusive temporary name and renamed."""
    os.makedirs(osp.dirname(osp.abspath(archive)), exist_ok=True)
    with atomic_write(archive, 'wb') as file, tarfile.open(fileobj=file, mode='w:gz') as tar:
        tar.add(work_dir, arcname=osp.basename(osp.normpath(work_dir)),
                filter=lambda member: None if osp.basename(member.name) == MATRIX_LOCK else member)


def main(argv=None):
    args = parse_args(argv)
    with contextlib.ExitStack() as run:
        with user_errors(FileNotFoundError, NotADirectoryError, PermissionError, IsADirectoryError, ValueError,
                         WorkDirInUseError):
            preset = preset_from_args(args)
            if args.part != 'report':  # the reports of a GPU run are written anywhere
                check_settings(preset.inference)
                check_train_settings(preset.training)
            if args.archive:
                # An earlier archive (gzip) is replaced, nothing else.
                check_writable_file(args.archive, parent_may_be_missing=True, inputs=[args.work_dir],
                                    own_output=file_starts_with(b'\x1f\x8b'))
            # One run per work dir: two would append their rows to one rows.jsonl, interleaved.
            run.enter_context(work_dir_lock(args.work_dir, MATRIX_LOCK, 'benchmark_matrix run'))
            rows = read_rows(osp.join(args.work_dir, 'rows.jsonl'))  # a foreign or damaged file: said before any run
            if args.part == 'report' and not rows:
                raise ValueError(f'--part report: {osp.join(args.work_dir, "rows.jsonl")} has no rows to report; '
                                 'measure them first (--part all, inference or training)')
        command = sys.orig_argv if argv is None else [sys.executable, __file__, *argv]
        for path in run_matrix(preset, CONFIG_DIR, args.work_dir, command, args.retry_failed):
            print(f'wrote {path}')
        if args.archive:
            with user_errors(DiskFullError):  # rows and reports are complete by now: the message says so
                write_archive(args.work_dir, args.archive)
            print(f'wrote {args.archive}')
        failures = parity_failures(latest_rows(read_rows(osp.join(args.work_dir, 'rows.jsonl'))))
        if failures:
            sys.exit(f'error: {failures}')


if __name__ == '__main__':
    filter_known_warnings()
    main()
