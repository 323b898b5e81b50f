"""Convert darknet's yolov4-csp.weights to a checkpoint of configs/yolov4_csp_coco.py.

    python tools/convert_darknet_weights.py configs/yolov4_csp_coco.py yolov4-csp.weights yolov4_csp.pth
    python tools/test.py configs/yolov4_csp_coco.py yolov4_csp.pth

The checkpoint holds the state dict and meta.dataset_meta.classes (the config's test dataset's
classes: COCO's 80). A file that does not fit the config exactly (truncated, extra data, another
header, another class count or network) is refused before anything is written.
"""
import argparse
import os.path as osp

import torch
from mmengine.config import DictAction

from parnet_det.convert.darknet_yolov4_csp import DarknetWeightsError, convert_darknet
from parnet_det.utils.checkpoint import checkpoint_meta
from parnet_det.utils.cli_args import path_arg, user_errors
from parnet_det.utils.config import config_class_names, config_files, load_config
from parnet_det.utils.fileio import DiskFullError, OutputIsInputError, atomic_write, check_writable_file
from parnet_det.utils.warnings_filter import filter_known_warnings


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', type=path_arg, help='YOLOv4-CSP config, e.g. configs/yolov4_csp_coco.py')
    parser.add_argument('src', type=path_arg, help='darknet weights file (e.g. yolov4-csp.weights)')
    parser.add_argument('dst', type=path_arg, help='output checkpoint (.pth)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, as for tools/test.py')
    return parser.parse_args()


def main():
    args = parse_args()
    with user_errors(DarknetWeightsError, OSError, OutputIsInputError):
        cfg = load_config(args.config, args.cfg_options)
        check_writable_file(args.dst, inputs=[*config_files(args.config), args.src],
                            own_output=lambda path: 'darknet_version' in checkpoint_meta(path))
        classes = config_class_names(cfg)
        if classes is None:
            raise DarknetWeightsError(f'{args.config} has no test dataset to take the class names from')
        state_dict, header = convert_darknet(cfg, args.src)
    meta = dict(dataset_meta=dict(classes=list(classes)), source=osp.basename(args.src),
                darknet_version=header.version, darknet_seen=header.seen)
    with user_errors(DiskFullError), atomic_write(args.dst) as f:
        torch.save(dict(state_dict=state_dict, meta=meta), f)
    num_floats = sum(v.numel() for k, v in state_dict.items() if not k.endswith('num_batches_tracked'))
    print(f'darknet {header.version} (seen {header.seen}): {num_floats} floats -> {args.dst} '
          f'({len(state_dict)} entries, {len(classes)} classes)')


if __name__ == '__main__':
    filter_known_warnings()
    main()
