"""The answer to the speed question, and the paper-style table: tools/benchmark.py (or
tools/benchmark_matrix.py) speed results, optionally merged with tools/test.py AP results.

    python tools/report.py --benchmark work_dirs/matrix_h100/results.json --out work_dirs/report
    python tools/report.py --ap work_dirs/*/ap_results.jsonl --benchmark work_dirs/benchmark/*/results.json \
        --out work_dirs/report

Writes report.md with, per recipe and regime (eager batch 1 = the paper's regime; fastest path batch
1; the largest batch; training step), every model's speed ratio to its recipe's baseline (or to
--baseline) with its spread over the repeats ("faster"/"slower" only where the spread excludes 1),
and with --ap the table of AP next to FPS; per runtime and input size, batch 1, every model's params,
FLOPs, latency and FPS with spreads, ratio to the baseline in that runtime and published AP (quoted with
its source, not measured); latency_vs_resolution.png, throughput_vs_batch.png, latency_per_runtime.png
(error bars: slowest and fastest repeat), and with --ap ap_vs_fps.png.
--benchmark takes results.json files or the rows.jsonl of a run still going or cut short.
"""
import argparse
import json
import os.path as osp

from parnet_det.benchmark import read_rows
from parnet_det.benchmark.matrix import RECIPES, hardware_of
from parnet_det.benchmark.paper_table import (
    merge,
    read_ap_results,
    read_benchmark_rows,
    render_speed_accuracy_plot,
    render_table,
)
from parnet_det.benchmark.regimes import RATIO_LEGEND, ratio_tables, regime_plots, training_estimates
from parnet_det.benchmark.report import write_files
from parnet_det.benchmark.rows import TRAIN_MODE, add_baseline_ratios, latest_rows, measured
from parnet_det.benchmark.runtime_table import runtime_latency_plot, runtime_tables
from parnet_det.benchmark.settings import baselines_of, pair_recipe
from parnet_det.utils.cli_args import path_arg, user_errors
from parnet_det.utils.warnings_filter import filter_known_warnings


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--ap', type=path_arg, nargs='+', default=[],
                        help='ap_results.jsonl files written by tools/test.py')
    parser.add_argument('--benchmark', type=path_arg, nargs='+', required=True,
                        help='results.json (or rows.jsonl) files of tools/benchmark.py / tools/benchmark_matrix.py')
    parser.add_argument('--out', type=path_arg, required=True, help='output folder')
    parser.add_argument('--baseline',
                        help='the model every ratio is against (default: per recipe, each model against the '
                        'baseline of its neck, head and recipe: ' + '; '.join(f'{r.name}: {r.baseline}'
                                                                              for r in RECIPES) + ')')
    parser.add_argument('--precision', default='fp32',
                        help='AP table: which benchmark precision to show (default fp32)')
    parser.add_argument('--batch-size', type=int, default=1, help='AP table: which batch size to show (default 1)')
    parser.add_argument('--form', default='deploy', choices=['deploy', 'train'], help='AP table: which model form')
    parser.add_argument('--variant', default='mmdet',
                        help="AP table: which benchmark variant to show (default mmdet; e.g. 'streams+cuda_graph')")
    return parser.parse_args(argv)


def read_speed_rows(paths):
    """Rows of results.json and rows.jsonl files (the last of each row retried), and the hardware they name."""
    rows = []
    for path in paths:
        if path.endswith('.jsonl'):
            rows += read_rows(path)
        else:
            with open(path) as file:
                hardware = json.load(file)['environment']['Device']
            # Rows written before they named their hardware: the file's environment does.
            rows += [dict(row, hardware=row.get('hardware') or hardware) for row in read_benchmark_rows([path])]
    rows = latest_rows(rows)
    return rows, hardware_of(rows)


def recipes_for(rows, baseline):
    """The recipes whose baseline has measured rows; with ``baseline``, one holding every model."""
    if baseline is not None:
        recipes = [pair_recipe(baseline, sorted({row['model'] for row in rows} - {baseline}), RECIPES)]
    else:
        recipes = list(RECIPES)
    measured_models = {row['model'] for row in measured(rows)}
    recipes = [recipe for recipe in recipes if recipe.baseline in measured_models]
    if not recipes:
        raise ValueError(f'no benchmark row of a baseline ({baseline or ", ".join(r.baseline for r in RECIPES)}); '
                         'name the one to compare with --baseline')
    return recipes


def main(argv=None):
    args = parse_args(argv)
    with user_errors(FileNotFoundError, ValueError, KeyError):
        missing = [p for p in args.ap + args.benchmark if not osp.isfile(p)]
        if missing:
            raise FileNotFoundError(f'no such file: {", ".join(missing)}')
        rows, device = read_speed_rows(args.benchmark)
        merged = merge(read_ap_results(args.ap), rows, args.precision, args.batch_size, args.form,
                       args.variant) if args.ap else None
        recipes = recipes_for(rows, args.baseline)
    add_baseline_ratios(rows, baselines_of(recipes))
    answer = ratio_tables(rows, recipes)
    if any(row['mode'] == TRAIN_MODE for row in rows):
        answer += '\n## Training time of the COCO recipe\n\n' + training_estimates(rows)
    sections = ['# Speed against the baseline, per regime', '',
                f'Hardware: {device}. {RATIO_LEGEND}', '', answer,
                '![latency against resolution](latency_vs_resolution.png)',
                '![throughput against batch](throughput_vs_batch.png)', '',
                '# Per runtime and input size', '', runtime_tables(rows),
                '![latency against resolution per runtime](latency_per_runtime.png)', '']
    files = dict(regime_plots(rows, device), **{'latency_per_runtime.png': runtime_latency_plot(rows)})
    if merged is not None:
        table = render_table(merged, device, args.precision, args.batch_size, args.form, args.variant)
        sections += ['# Speed and accuracy', '', table, '![AP against FPS](ap_vs_fps.png)', '']
        files['ap_vs_fps.png'] = render_speed_accuracy_plot(merged, device)
        print(table)
    print(answer)
    for path in write_files(args.out, {'report.md': '\n'.join(sections).encode(), **files}):
        print(f'wrote {path}')


if __name__ == '__main__':
    filter_known_warnings()
    main()
