"""Fold a trained model's ParNet blocks and write a deploy checkpoint.

    python tools/reparameterize.py CONFIG CHECKPOINT OUT
    # OUT loads into the same config built with deploy=True
    # (e.g. --cfg-options model.backbone.deploy=True), or use tools/test.py --deploy.
"""
import argparse

from mmengine.config import DictAction

from parnet_det.apis import load_config
from parnet_det.deploy import reparameterize_checkpoint
from parnet_det.utils.checkpoint import CheckpointError
from parnet_det.utils.cli_args import path_arg, user_errors
from parnet_det.utils.warnings_filter import filter_known_warnings


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', type=path_arg, help='model config file')
    parser.add_argument('checkpoint', type=path_arg, help='trained checkpoint (training form)')
    parser.add_argument('out', type=path_arg, help='deploy checkpoint to write')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, as in mmdet tools (key=value)')
    return parser.parse_args()


def main():
    args = parse_args()
    with user_errors(CheckpointError, FileNotFoundError, OSError, ValueError):
        cfg = load_config(args.config, args.cfg_options)
        num_folded = reparameterize_checkpoint(cfg, args.checkpoint, args.out)
    print(f'folded {num_folded} blocks; deploy checkpoint written to {args.out}')


if __name__ == '__main__':
    filter_known_warnings()
    main()
