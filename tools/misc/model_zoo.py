"""Render the model-zoo tables of the READMEs from the configs' metafiles (model-index.yml and what it imports),
and measure the sizes a metafile entry states.

    python tools/misc/model_zoo.py                      # rewrite every README table that differs from its metafile
    python tools/misc/model_zoo.py --check              # exit 1, naming them, if any README table is out of date
    python tools/misc/model_zoo.py --sizes CONFIG [--flops-at 640]   # the entry's Parameters (and FLOPs), as YAML

Each family's README (configs/<family>/README.md) gets its models and measured speed from its metafile.yml, and
README.md the table of families and of the top-level entry points; the tables sit between
<!-- model-zoo:KIND --> and <!-- model-zoo:end --> markers. Edit the metafile, then run this. --sizes builds the
model as the benchmark does (random weights; deploy form: ParNet's branches and every ConvModule's BatchNorm
folded) and prints what goes into the entry's Metadata.
"""
import argparse
import os.path as osp
import sys

import yaml

from parnet_det.benchmark.measurement import measured_sizes
from parnet_det.utils.cli_args import path_arg, positive_int, user_errors
from parnet_det.utils.model_zoo import MODEL_INDEX, updated_readmes, write_tables
from parnet_det.utils.warnings_filter import filter_known_warnings

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--root', type=path_arg, default=ROOT, help=f'the repository (holds {MODEL_INDEX})')
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument('--check', action='store_true', help='change nothing; exit 1 if a table is out of date')
    mode.add_argument('--sizes', type=path_arg, metavar='CONFIG', help="print a config's sizes for its metafile")
    parser.add_argument('--flops-at', type=positive_int, metavar='SIDE', help='with --sizes: FLOPs at SIDE px')
    args = parser.parse_args(argv)
    if args.flops_at and not args.sizes:
        parser.error('--flops-at goes with --sizes CONFIG')
    return args


def main(argv=None):
    args = parse_args(argv)
    with user_errors(FileNotFoundError, ValueError, KeyError):
        if args.sizes:
            print(yaml.safe_dump(measured_sizes(args.sizes, args.flops_at), sort_keys=False), end='')
            return
        if args.check:
            stale = sorted(updated_readmes(args.root))
            if stale:
                print(f'out of date: {", ".join(stale)}; run python tools/misc/model_zoo.py', file=sys.stderr)
                sys.exit(1)
            print('every model-zoo table matches its metafile')
            return
        written = write_tables(args.root)
    print(f'rewrote {", ".join(written)}' if written else 'every model-zoo table already matches its metafile')


if __name__ == '__main__':
    filter_known_warnings()
    main()
