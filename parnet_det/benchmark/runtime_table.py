"""The deployers' table, in the form of RTMDet's and the YOLOs' published tables: per runtime (the path a row ran
on, precision included) and input size, batch 1, each model's params, FLOPs, latency and FPS with their spread
over the repeats, its speed over its recipe's baseline in the same runtime (paired where timed together), and
its published AP, quoted with its source (:mod:`.published`), never measured; and the latency against the
input size, one panel per runtime and mode.

A model's published AP is that of its network with its authors' weights; the rows time the same network with
random weights under the controlled workload. INT8 rows (``onnxruntime-int8``, ``openvino-int8``) add their
calibration time and the AP change INT8 costs in that runtime, measured on a trained detector of the same
backbone family (:func:`int8_ap_cell`: the records of :func:`~parnet_det.deploy.runtime_accuracy.int8_accuracy`,
e.g. the demo's trained detectors; never the random-weight rows themselves); :func:`int8_accuracy_table` is the
table of those records.
"""
from typing import Dict, List, Optional, Sequence, Tuple

from ..deploy import RuntimeVariant
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


# A backbone whose INT8 AP change is measured on a trained detector of another type with the same blocks.
INT8_STAND_INS = {'ParNetCSP': 'ParNet'}


def is_int8(row: dict) -> bool:
    runtime = RuntimeVariant.parse(row.get('variant', 'mmdet'))
    return runtime is not None and runtime.precision == 'int8'


def int8_ap_cell(row: dict, accuracy: Sequence[dict]) -> str:
    """The default INT8's AP change in the row's runtime, measured on a trained detector of the row's backbone
    (or its stand-in, :data:`INT8_STAND_INS`), e.g. ``-0.005 (yolo_parnet_tiny_synthetic: 0.243 -> 0.238)``;
    'not measured' without one."""
    runtime = RuntimeVariant.parse(row['variant']).runtime
    backbone = row.get('backbone')
    found = [record for record in accuracy
             if record['runtime'] == runtime and record.get('int8') == 'default'
             and record['backbone'] in (backbone, INT8_STAND_INS.get(backbone))]
    if not found:
        return 'not measured (no trained detector of this backbone)'
    return '; '.join(f'{record["ap_change"]:+.3f} ({record["model"]}: {record["ap"] - record["ap_change"]:.3f} -> '
                     f'{record["ap"]:.3f})' for record in found)


def _line(row: dict, accuracy: Optional[Sequence[dict]] = None) -> str:
    fastest, slowest = ms_span(row)
    int8 = (f' {row.get("calibration_s", 0):.1f} ({row.get("calibration_images", "-")}) | '
            f'{int8_ap_cell(row, accuracy)} |' if accuracy is not None else '')
    return (f'| {row["model"]} | {row["resolution"]} | {row["params"] / 1e6:.2f} | '
            f'{row["flops_per_image"] / 1e9:.2f} | {row["ms_per_batch_median"]:.2f} ({fastest:.2f}-{slowest:.2f}) | '
            f'{row["images_per_s"]:.1f} ({1000 / slowest:.1f}-{1000 / fastest:.1f}) | '
            f'{ratio_cell(row, "fps_ratio_to_baseline")} | {published_ap_cell(row["model"])} |{int8}')


def int8_accuracy_table(records: Sequence[dict]) -> str:
    """Markdown: per trained detector, runtime and INT8 form, box AP and AP50 in fp32 and INT8 (records of
    :func:`~parnet_det.deploy.runtime_accuracy.int8_accuracy`)."""
    fp32 = {(record['model'], record['runtime']): record for record in records if record['precision'] == 'fp32'}
    lines = ['| model | backbone | runtime | INT8 form | AP fp32 | AP INT8 | AP change | AP50 fp32 | AP50 INT8 | '
             'calibration: images, s |', '|---|---|---|---|---|---|---|---|---|---|']
    for record in records:
        if record['precision'] != 'int8':
            continue
        reference = fp32[record['model'], record['runtime']]
        lines.append(f'| {record["model"]} | {record["backbone"]} | {record["runtime"]} | {record["int8"]} | '
                     f'{reference["ap"]:.3f} | {record["ap"]:.3f} | {record["ap_change"]:+.3f} | '
                     f'{reference["ap50"]:.3f} | {record["ap50"]:.3f} | {record["calibration_images"]}, '
                     f'{record["calibration_s"]:.1f} |')
    return '\n'.join(lines)


def int8_gap_lines(records: Sequence[dict], baseline: str) -> List[str]:
    """Per runtime, one line: each detector's AP change under the default INT8 against ``baseline``'s (records of
    :func:`~parnet_det.deploy.runtime_accuracy.int8_accuracy`, the model names as they name them)."""
    lines = []
    for runtime in dict.fromkeys(record['runtime'] for record in records):
        changes = {record['model']: record['ap_change'] for record in records
                   if record['runtime'] == runtime and record.get('int8') == 'default'}
        if baseline not in changes:
            continue
        others = [f'{model} {change:+.3f} ({change - changes[baseline]:+.3f} against the baseline)'
                  for model, change in changes.items() if model != baseline]
        lines.append(f'- {runtime}: INT8 AP change {", ".join(others)}; {baseline} {changes[baseline]:+.3f}')
    return lines


def runtime_tables(rows: List[dict], accuracy: Sequence[dict] = ()) -> str:
    """Markdown: one table per hardware, mode and runtime (rows with ``fps_ratio_to_baseline`` set by
    :func:`~.rows.add_baseline_ratios`); INT8 tables add the calibration and the AP change of ``accuracy``
    (records of :func:`~parnet_det.deploy.runtime_accuracy.int8_accuracy`)."""
    sections = ['Batch 1, deploy form. Latency: median ms over the timed repeats (min-max); FPS: 1000 / ms (from '
                'the slowest and the fastest repeat); x baseline: FPS over that of the recipe\'s baseline in the '
                'same runtime, input size and mode (paired round by round where timed together). Published AP: '
                'quoted with its source for the network with its authors\' weights; the rows time random weights, '
                'so it is not measured here.', '']
    for (hardware, mode, runtime), group in by_runtime(rows).items():
        note = legacy_scope_note(group)
        int8 = is_int8(group[0])
        scope = [f'INT8 graph: {group[0]["int8_scope"]}. Calibration: {group[0].get("calibration_data")}, once per '
                 'model and size, its seconds apart from latency. AP change: INT8 minus fp32 in this runtime, '
                 'measured on a trained detector (not on these random-weight rows).', ''] if int8 else []
        sections += [f'## {hardware}: {runtime}, {mode}', '', MODE_TITLES[mode], '', *([note, ''] if note else []),
                     *scope,
                     '| model | px | params (M) | GFLOPs | latency ms (min-max) | FPS (min-max) | × baseline (spread) '
                     '| published AP, not measured (data; source) |'
                     + (' calibration s (images) | INT8 AP change, trained detector |' if int8 else ''),
                     '|---|---|---|---|---|---|---|---|' + ('---|---|' if int8 else ''),
                     *(_line(row, accuracy if int8 else None) for row in group), '']
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
