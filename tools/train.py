"""Train a detector (MMDetection's train tool, with parnet_det registered and the data checked first).

    python tools/train.py configs/yolo_parnet_xl_coco.py [--work-dir DIR] [--amp] [--auto-scale-lr]
        [--resume [CHECKPOINT]] [--cfg-options key=value ...] [--launcher none|pytorch|slurm|mpi]
    bash tools/dist_train.sh configs/yolo_parnet_xl_coco.py 8
"""
import argparse
import contextlib
import os
import signal

from mmengine.config import DictAction
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

import parnet_det  # noqa: F401  (registers the modules, safe checkpoint loading)
from parnet_det.apis import exclusive_work_dir, load_config, run_inputs, set_work_dir, setup_train_config
from parnet_det.datasets import DatasetConfigError, check_dataset_config
from parnet_det.engine import TrainingDivergedError, TrainingPreempted
from parnet_det.utils.checkpoint import CheckpointError
from parnet_det.utils.cli_args import path_arg, user_errors
from parnet_det.utils.fileio import DiskFullError, check_apart_from_inputs
from parnet_det.utils.warnings_filter import filter_known_warnings
from parnet_det.utils.work_dir_lock import WorkDirInUseError, WorkDirNotWritableError


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', type=path_arg, help='train config file path')
    parser.add_argument('--work-dir', type=path_arg, help='the dir to save logs and models')
    parser.add_argument('--amp', action='store_true', help='enable automatic-mixed-precision training')
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help='scale the learning rate by total batch size / auto_scale_lr.base_batch_size')
    parser.add_argument('--resume', nargs='?', type=path_arg, const='auto',
                        help='resume from CHECKPOINT, or without a value from the latest checkpoint in work_dir')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings of the config, key=value (e.g. train_dataloader.batch_size=4)')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none',
                        help='job launcher')
    # torch.distributed.launch passes --local-rank; torchrun sets LOCAL_RANK.
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def main():
    args = parse_args()
    with contextlib.ExitStack() as run:
        with user_errors(CheckpointError, DatasetConfigError, FileNotFoundError, KeyError, ValueError,
                         WorkDirInUseError, WorkDirNotWritableError):
            cfg = load_config(args.config, args.cfg_options)
            check_dataset_config(cfg, splits=('train', 'val') if cfg.get('val_cfg') else ('train',))
            set_work_dir(cfg, args.config, args.work_dir)
            # Before the lock creates it: logs and checkpoints never go among the data or over the config.
            check_apart_from_inputs(cfg.work_dir, run_inputs(cfg, args.config))
            # One run per work dir, held until this process ends (also while --resume looks into it).
            run.enter_context(exclusive_work_dir(cfg.work_dir, args.launcher))
            setup_train_config(cfg, args.config, work_dir=args.work_dir, amp=args.amp,
                               auto_scale_lr=args.auto_scale_lr, resume=args.resume, launcher=args.launcher)
        # Raised by the run's own checks (parnet_det.engine's hooks, the dataset's identity checks on a file too
        # big for the pre-flight); anything else keeps its traceback. SIGTERM: the shell's exit status of it.
        with user_errors(TrainingPreempted, exit_code=128 + signal.SIGTERM), \
                user_errors(CheckpointError, DatasetConfigError, DiskFullError, TrainingDivergedError):
            runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)
            runner.train()

if __name__ == '__main__':
    filter_known_warnings()
    main()
