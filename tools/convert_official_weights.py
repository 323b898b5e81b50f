"""Convert an official ParNet ImageNet checkpoint (.pth.tar) to parnet_det's names.

    python tools/convert_official_weights.py parnet_xl.pth.tar parnet_xl_imagenet_converted.pth
    # then in a config:
    # backbone=dict(type='ParNet', arch='xl', out_indices=(1, 2, 3),
    #               init_cfg=dict(type='Pretrained', checkpoint='parnet_xl_imagenet_converted.pth'))
"""
import argparse
import os.path as osp

import torch

from parnet_det.convert import ConversionError, convert_official, load_official_state_dict
from parnet_det.utils.checkpoint import CheckpointError, checkpoint_meta
from parnet_det.utils.cli_args import path_arg, user_errors
from parnet_det.utils.fileio import DiskFullError, OutputIsInputError, atomic_write, check_writable_file
from parnet_det.utils.warnings_filter import filter_known_warnings


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('src', type=path_arg, help='official checkpoint (.pth.tar with state_dict / state_dict_ema)')
    parser.add_argument('dst', type=path_arg, help='output file (.pth)')
    parser.add_argument('--weights', choices=['state_dict', 'ema'], default='state_dict',
                        help="which weights of the checkpoint: its plain state_dict (default: what the release's "
                             'validate commands evaluate, the published top-1) or its state_dict_ema')
    parser.add_argument('--form', choices=['backbone', 'classifier'], default='backbone',
                        help='backbone: ParNet keys for init_cfg Pretrained (default); '
                             'classifier: ParNetClassifier keys including the ImageNet head')
    return parser.parse_args()


def main():
    args = parse_args()
    with user_errors(CheckpointError, ConversionError, OSError, OutputIsInputError):
        check_writable_file(args.dst, inputs=[args.src], own_output=lambda path: 'parnet_arch' in checkpoint_meta(path))
        state_dict, report = convert_official(load_official_state_dict(args.src, args.weights), args.form)
    meta = dict(parnet_arch=report['arch'], parnet_preset=report['preset'], form=args.form,
                source=osp.basename(args.src), weights=args.weights)
    with user_errors(DiskFullError), atomic_write(args.dst) as f:
        torch.save(dict(state_dict=state_dict, meta=meta), f)
    print(f'ParNet arch: {report["preset"] or "custom"} {report["arch"]}')
    print(f'converted {report["converted"]} entries ({args.weights} weights) -> {args.dst} ({args.form} form)')
    if report['dropped_head']:
        print(f'not needed by the backbone form: {", ".join(report["dropped_head"])}')
    if report['unused']:
        print(f'official keys with no counterpart ({len(report["unused"])}): {", ".join(report["unused"])}')


if __name__ == '__main__':
    filter_known_warnings()
    main()
