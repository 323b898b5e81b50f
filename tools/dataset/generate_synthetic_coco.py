"""Generate the synthetic shapes dataset in COCO format (train and val splits).

    python tools/dataset/generate_synthetic_coco.py data/synthetic_coco
    python tools/dataset/generate_synthetic_coco.py OUT --num-train 2000 --image-size 320 --num-classes 8

The same arguments and seed always give byte-identical files.
"""
import argparse
import os.path as osp

from parnet_det.datasets import DEFAULT_NUM_CLASSES, SHAPES, generate_synthetic_coco, synthetic_coco_cfg_options
from parnet_det.utils.cli_args import non_negative_int, path_arg, positive_int, user_errors
from parnet_det.utils.warnings_filter import filter_known_warnings


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('out_dir', type=path_arg, help='directory to write the images and annotations into')
    parser.add_argument('--num-train', type=non_negative_int, default=400, help='number of training images')
    parser.add_argument('--num-val', type=non_negative_int, default=100, help='number of validation images')
    parser.add_argument('--image-size', type=positive_int, nargs='+', default=[256], metavar='SIZE',
                        help='image size: one value for square images, or HEIGHT WIDTH')
    parser.add_argument('--num-classes', type=positive_int, default=DEFAULT_NUM_CLASSES,
                        help=f'number of shape classes, the first ones of: {", ".join(SHAPES)}')
    parser.add_argument('--seed', type=int, default=0, help='seed of the whole dataset')
    args = parser.parse_args()
    if len(args.image_size) > 2:
        parser.error('--image-size takes one value (square) or two (HEIGHT WIDTH)')
    return args


def main():
    args = parse_args()
    image_size = args.image_size[0] if len(args.image_size) == 1 else tuple(args.image_size)
    with user_errors(OSError, ValueError):
        summary = generate_synthetic_coco(args.out_dir, num_train=args.num_train, num_val=args.num_val,
                                          image_size=image_size, num_classes=args.num_classes, seed=args.seed)
    data_root = osp.join(osp.abspath(args.out_dir), '')
    train, val = summary['train'], summary['val']
    print(f'wrote {train["num_images"]} train images ({train["num_objects"]} objects) and '
          f'{val["num_images"]} val images ({val["num_objects"]} objects) to {data_root}')
    print(f'classes: {", ".join(summary["classes"])}')
    print('point a config at it with:\n  --cfg-options ' + ' '.join(synthetic_coco_cfg_options(data_root)))
    if args.num_classes != DEFAULT_NUM_CLASSES:
        print(f'and give the config metainfo=dict(classes={summary["classes"]}) and a head with '
              f'num_classes={args.num_classes}')


if __name__ == '__main__':
    filter_known_warnings()
    main()
