"""Merge tools/test.py AP results and tools/benchmark.py speed results into the paper-style table.

    python tools/report.py --ap work_dirs/*/ap_results.jsonl --benchmark work_dirs/benchmark/*/results.json \
        --out work_dirs/report    # writes report.md and ap_vs_fps.png
"""
import argparse
import json
import os
import os.path as osp
import sys

from parnet_det.benchmark.paper_table import (merge, read_ap_results, read_benchmark_rows, render_speed_accuracy_plot,
                                              render_table)
from parnet_det.utils.warnings_filter import filter_known_warnings


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--ap', nargs='+', required=True, help='ap_results.jsonl files written by tools/test.py')
    parser.add_argument('--benchmark', nargs='+', required=True, help='results.json files of tools/benchmark.py')
    parser.add_argument('--out', required=True, help='output folder')
    parser.add_argument('--precision', default='fp32', help='which benchmark precision to show (default fp32)')
    parser.add_argument('--batch-size', type=int, default=1, help='which benchmark batch size to show (default 1)')
    parser.add_argument('--form', default='deploy', choices=['deploy', 'train'], help='which model form to show')
    parser.add_argument('--variant', default='mmdet',
                        help="which benchmark variant to show (default mmdet; e.g. 'streams+cuda_graph')")
    return parser.parse_args()


def main():
    args = parse_args()
    missing = [p for p in args.ap + args.benchmark if not osp.isfile(p)]
    if missing:
        sys.exit(f'error: no such file: {", ".join(missing)}')
    try:
        rows = merge(read_ap_results(args.ap), read_benchmark_rows(args.benchmark), args.precision,
                     args.batch_size, args.form, args.variant)
    except ValueError as err:
        sys.exit(f'error: {err}')
    with open(args.benchmark[0]) as f:
        device = json.load(f)['environment']['Device']
    os.makedirs(args.out, exist_ok=True)
    table = render_table(rows, device, args.precision, args.batch_size, args.form, args.variant)
    with open(osp.join(args.out, 'report.md'), 'w') as f:
        f.write('# Speed and accuracy\n\n' + table + '\n![AP against FPS](ap_vs_fps.png)\n')
    with open(osp.join(args.out, 'ap_vs_fps.png'), 'wb') as f:
        f.write(render_speed_accuracy_plot(rows, device))
    print(table)
    print(f'wrote {osp.join(args.out, "report.md")} and ap_vs_fps.png')


if __name__ == '__main__':
    filter_known_warnings()
    main()
