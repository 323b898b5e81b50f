"""Evaluate a checkpoint: COCO bbox AP (mmdet's CocoMetric / pycocotools), or ImageNet top-1/top-5 for the
configs of configs/imagenet/ (mmpretrain's Accuracy).

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out results.pkl] [--show-dir DIR]
        [--tta] [--deploy] [--resolution 512 | H W] [--official-batches 8] [--cfg-options ...] [--launcher ...]
    bash tools/dist_test.sh CONFIG CHECKPOINT 8
"""
import argparse
import os
import os.path as osp

from mmengine.config import ConfigDict, DictAction
from mmengine.evaluator import DumpResults
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from mmdet.evaluation import DumpDetResults

import parnet_det  # noqa: F401  (registers the modules, safe checkpoint loading)
from parnet_det.apis import (
    check_show_dir,
    default_work_dir,
    load_config,
    record_ap_results,
    run_inputs,
    set_launcher,
    set_test_resolution,
    use_checked_test_model,
    use_official_batches,
)
from parnet_det.datasets import DatasetConfigError, check_dataset_config
from parnet_det.utils.checkpoint import CheckpointError
from parnet_det.utils.cli_args import path_arg, positive_int, user_errors
from parnet_det.utils.fileio import check_apart_from_inputs, check_writable_file, file_starts_with
from parnet_det.utils.warnings_filter import filter_known_warnings


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', type=path_arg, help='test config file path')
    parser.add_argument('checkpoint', type=path_arg, help='checkpoint file')
    parser.add_argument('--work-dir', type=path_arg,
                        help='the directory to save the file containing evaluation metrics')
    parser.add_argument('--out', type=path_arg, help='dump predictions to a pickle file (.pkl) for offline evaluation')
    parser.add_argument('--show', action='store_true', help='show prediction results')
    parser.add_argument('--show-dir', type=path_arg,
                        help='folder for the painted images: a name (made in WORK_DIR/<timestamp>/), or an absolute '
                        'path to a new or empty folder')
    parser.add_argument('--wait-time', type=float, default=2, help='the interval of show (s)')
    parser.add_argument('--tta', action='store_true', help='test-time augmentation (flip), as in mmdet')
    parser.add_argument('--deploy', action='store_true',
                        help="fold ParNet's branches (re-parameterise) after loading, before evaluating")
    parser.add_argument('--resolution', type=positive_int, nargs='+', metavar='SIZE',
                        help='test input size: one side (square) or H W; sets the resize and padding')
    parser.add_argument('--official-batches', type=positive_int, metavar='N',
                        help="YOLOv4-CSP configs: Scaled-YOLOv4's test batches (images sorted by aspect ratio, N per "
                        'batch, one letterbox shape per batch) and its box arithmetic; the published val2017 AP '
                        'used N=8')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings of the config, key=value')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    if args.resolution is not None and len(args.resolution) > 2:
        parser.error(f'--resolution takes one side or H W, got {len(args.resolution)} values')
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def apply_visualization(cfg, args, inputs):
    hook = cfg.default_hooks.get('visualization')
    if hook is None:
        raise KeyError('--show / --show-dir need default_hooks.visualization in the config')
    hook.draw = True
    if args.show:
        hook.show = True
        hook.wait_time = args.wait_time
    if args.show_dir:
        check_show_dir(cfg, args.show_dir, inputs)
        hook.test_out_dir = args.show_dir


def apply_tta(cfg):
    if 'tta_model' not in cfg or 'tta_pipeline' not in cfg:
        raise KeyError('--tta needs tta_model and tta_pipeline in the config (the YOLOX base provides them)')
    cfg.model = ConfigDict(**cfg.tta_model, module=cfg.model)
    cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline


# The EMA hooks a config may name (mmengine's and parnet_det's per-optimizer-step one).
EMA_HOOKS = ('EMAHook', 'mmdet.EMAHook', 'OptimizerStepEMAHook')


def apply_deploy(cfg):
    # An mmengine checkpoint's state_dict already holds the EMA weights; EMAHook would swap
    # training-form parameters into the folded model.
    cfg.custom_hooks = [h for h in cfg.get('custom_hooks', []) if h['type'] not in EMA_HOOKS]
    cfg.custom_hooks.append(dict(type='ReparameterizeHook'))


def main():
    args = parse_args()
    with user_errors(CheckpointError, DatasetConfigError, FileExistsError, FileNotFoundError, IsADirectoryError,
                     KeyError, NotADirectoryError, PermissionError, ValueError):
        cfg = load_config(args.config, args.cfg_options)
        set_launcher(cfg, args.launcher)
        cfg.work_dir = args.work_dir or cfg.get('work_dir') or default_work_dir(args.config)
        cfg.load_from = args.checkpoint
        inputs = run_inputs(cfg, args.config, args.checkpoint)
        check_apart_from_inputs(cfg.work_dir, inputs)  # nor may the work dir be, or lie in, the data
        if args.resolution:
            set_test_resolution(cfg, args.resolution)
        if args.official_batches:
            use_official_batches(cfg, args.official_batches, args.launcher)
        if args.show or args.show_dir:
            apply_visualization(cfg, args, inputs)
        if args.deploy:
            apply_deploy(cfg)
        if args.out is not None and not args.out.endswith(('.pkl', '.pickle')):
            raise ValueError('--out must be a .pkl or .pickle file')
        if args.out is not None:
            # mmengine dumps the results as a pickled list (protocol 2): an earlier --out is replaced, nothing else.
            check_writable_file(args.out, parent_may_be_missing=True, inputs=inputs,
                                own_output=file_starts_with(b'\x80\x02]'))
        check_dataset_config(cfg, splits=('test',))
        # The runner's load_from is non-strict: a checkpoint of another model (or a deploy checkpoint
        # in the training form) would be evaluated with random weights. Prove that it fits, with its
        # classes, and build the runner's model from the config it fits (before --tta wraps the model).
        use_checked_test_model(cfg, args.checkpoint)
        if args.tta:
            apply_tta(cfg)
    runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)
    if args.out is not None:
        # mmdet's dump drops masks to RLE; a classifier's predictions (configs/imagenet/) go out as they are.
        dump = DumpResults if cfg.get('default_scope') == 'mmpretrain' else DumpDetResults
        runner.test_evaluator.metrics.append(dump(out_file_path=args.out))
    with user_errors(DatasetConfigError):  # the dataset's identity checks on a file too big for the pre-flight
        metrics = runner.test()
    if runner.rank == 0:
        record = record_ap_results(osp.join(cfg.work_dir, 'ap_results.jsonl'), args.config, args.checkpoint,
                                   cfg, metrics, deploy=args.deploy, tta=args.tta)
        print(f'results appended to {record}')


if __name__ == '__main__':
    filter_known_warnings()
    main()
