"""The deployers' table, in the form of RTMDet's and the YOLOs' published tables: per runtime (the path a row ran
on, precision included) and input size, batch 1, each model's params, FLOPs, latency and FPS with their spread
over the repeats, its speed over its recipe's baseline in the same runtime (paired where timed together), and
its published AP, quoted with its source (:mod:`.published`), never measured; and the latency against the
input size, one panel per runtime and mode.

A model's published AP is that of its network with its authors' weights; the rows time the same network with
random weights under the controlled workload.
"""
from typing import Dict, List, Tuple

from .plotting import finish_axes, new_figure, to_png
from .published import published_ap_cell
from .rows import MODE_TITLES, legacy_scope_note, measured, numeric_order, path_label
from .settings import MODES
from .tables import ratio_cell


def runtime_of(row: dict) -> str:
    """The runtime a row ran on, in words (rows written before rows named their path: from the variant)."""
    return row.get('path') or path_label(row.get('variant', 'mmdet'), row['precision'])


def by_runtime(rows: List[dict]) -> Dict[Tuple[str, str, str], List[dict]]:
    """(hardware, mode, runtime) -> its measured deploy-form batch-1 rows, by input size then model."""
    groups: Dict[Tuple[str, str, str], List[dict]] = {}
    chosen = [row for row in measured(rows)
              if row['mode'] in MODES and row.get('form', 'deploy') == 'deploy' and row['batch_size'] == 1]
    for row in sorted(chosen, key=lambda row: (numeric_order(row['resolution']), row['model'])):
        groups.setdefault((str(row.get('hardware')), row['mode'], runtime_of(row)), []).append(row)
    return groups


def ms_span(row: dict) -> Tuple[float, float]:
    """The fastest and the slowest repeat's ms per batch (the median for rows of one repeat, written without)."""
    return (row.get('ms_per_batch_min', row['ms_per_batch_median']),
            row.get('ms_per_batch_max', row['ms_per_batch_median']))


def _line(row: dict) -> str:
    fastest, slowest = ms_span(row)
    return (f'| {row["model"]} | {row["resolution"]} | {row["params"] / 1e6:.2f} | '
            f'{row["flops_per_image"] / 1e9:.2f} | {row["ms_per_batch_median"]:.2f} ({fastest:.2f}-{slowest:.2f}) | '
            f'{row["images_per_s"]:.1f} ({1000 / slowest:.1f}-{1000 / fastest:.1f}) | '
            f'{ratio_cell(row, "fps_ratio_to_baseline")} | {published_ap_cell(row["model"])} |')


def runtime_tables(rows: List[dict]) -> str:
    """Markdown: one table per hardware, mode and runtime (rows with ``fps_ratio_to_baseline`` set by
    :func:`~.rows.add_baseline_ratios`)."""
    sections = ['Batch 1, deploy form. Latency: median ms over the timed repeats (min-max); FPS: 1000 / ms (from '
                'the slowest and the fastest repeat); x baseline: FPS over that of the recipe\'s baseline in the '
                'same runtime, input size and mode (paired round by round where timed together). Published AP: '
                'quoted with its source for the network with its authors\' weights; the rows time random weights, '
                'so it is not measured here.', '']
    for (hardware, mode, runtime), group in by_runtime(rows).items():
        note = legacy_scope_note(group)
        sections += [f'## {hardware}: {runtime}, {mode}', '', MODE_TITLES[mode], '', *([note, ''] if note else []),
                     '| model | px | params (M) | GFLOPs | latency ms (min-max) | FPS (min-max) | × baseline (spread) '
                     '| published AP, not measured (data; source) |', '|---|---|---|---|---|---|---|---|',
                     *map(_line, group), '']
    return '\n'.join(sections)


def runtime_latency_plot(rows: List[dict]) -> bytes:
    """ms per image (batch 1) against the input side, one panel per runtime and mode, one line per model
    (error bars: the fastest and the slowest repeat)."""
    groups = by_runtime(rows)
    figure = new_figure(6 * max(len(groups), 1), 4.5)
    for index, ((hardware, mode, runtime), group) in enumerate(groups.items(), start=1):
        axes = figure.add_subplot(1, len(groups), index)
        for model in dict.fromkeys(row['model'] for row in group):
            points = [row for row in group if row['model'] == model]
            ms, spans = [row['ms_per_batch_median'] for row in points], [ms_span(row) for row in points]
            axes.errorbar([row['resolution'] for row in points], ms, marker='o', capsize=3, label=model,
                          yerr=[[m - low for m, (low, _) in zip(ms, spans)],
                                [high - m for m, (_, high) in zip(ms, spans)]])
        finish_axes(axes, title=f'{runtime}\n{mode}, {hardware}', xlabel='input side (px)',
                    ylabel='ms per image (batch 1)')
    return to_png(figure)
