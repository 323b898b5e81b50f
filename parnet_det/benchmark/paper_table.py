"""The paper-style table: accuracy (tools/test.py) next to speed (tools/benchmark.py)."""
import json
from typing import Dict, List, Optional, Sequence

from .plotting import finish_axes, new_figure, to_png

AP_KEYS = ('bbox_mAP', 'bbox_mAP_50', 'bbox_mAP_75', 'bbox_mAP_s', 'bbox_mAP_m', 'bbox_mAP_l')
AP_TITLES = ('AP', 'AP50', 'AP75', 'APs', 'APm', 'APl')


def read_ap_results(paths: Sequence[str]) -> List[dict]:
    """Records appended by tools/test.py to ``WORK_DIR/ap_results.jsonl``; the last one per
    (model, resolution, deploy) wins."""
    latest: Dict[tuple, dict] = {}
    for path in paths:
        with open(path) as f:
            for line_number, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as err:
                    raise ValueError(f'{path}:{line_number} is not a tools/test.py AP record ({err})') from None
                if not isinstance(record.get('resolution'), list) or 'metrics' not in record:
                    raise ValueError(f'{path}:{line_number} lacks resolution/metrics: not a tools/test.py AP record')
                latest[(record['model'], tuple(record['resolution']), bool(record.get('deploy')))] = record
    return list(latest.values())


def read_benchmark_rows(paths: Sequence[str]) -> List[dict]:
    rows = []
    for path in paths:
        with open(path) as f:
            content = json.load(f)
        if 'rows' not in content:
            raise ValueError(f'{path} is not a tools/benchmark.py results.json (no "rows")')
        rows += content['rows']
    return rows


def _ap(record: dict, key: str) -> Optional[float]:
    value = record['metrics'].get(f'coco/{key}')
    return None if value is None or value < 0 else value  # pycocotools gives -1 with no object of that size


def merge(ap_records: List[dict], bench_rows: List[dict], precision: str = 'fp32', batch_size: int = 1,
          form: str = 'deploy', variant: str = 'mmdet') -> List[dict]:
    """One row per (model, resolution) that has an AP: depth, params, FLOPs, FPS and APs.

    The speed columns come from the benchmark rows of the same model (config
    name) and square resolution at ``precision`` / ``batch_size`` / ``form`` /
    ``variant`` (results written before variants existed are 'mmdet');
    missing ones stay empty.
    """
    speed = {}
    for row in bench_rows:
        if (row['precision'], row['batch_size'], row['form'], row.get('variant', 'mmdet')) == (
                precision, batch_size, form, variant):
            speed.setdefault((row['model'], row['resolution']), {})[row['mode']] = row
    merged = []
    for record in sorted(ap_records, key=lambda r: (r['model'], r['resolution'], bool(r.get('deploy')))):
        height, width = record['resolution']
        timing = speed.get((record['model'], height), {}) if height == width else {}
        reference = timing.get('network') or timing.get('end2end') or {}
        merged.append(dict(
            model=record['model'], resolution=height if height == width else f'{height}x{width}',
            deploy=bool(record.get('deploy')), depth=reference.get('backbone_depth'),
            params=reference.get('params'), flops=reference.get('flops_per_image'),
            fps_network=timing.get('network', {}).get('images_per_s'),
            fps_end2end=timing.get('end2end', {}).get('images_per_s'),
            **{title: _ap(record, key) for key, title in zip(AP_KEYS, AP_TITLES)}))
    return merged


def _cell(value, fmt):
    return '' if value is None else format(value, fmt)


def render_table(rows: List[dict], device: str, precision: str, batch_size: int, form: str,
                 variant: str = 'mmdet') -> str:
    lines = [
        f'Speed: {device}, {precision}, batch {batch_size}, {form} form, {variant} variant; FPS = images/s, '
        'network = backbone + '
        'neck + head, end-to-end = pre-processing to boxes after NMS. AP: COCO bbox metrics (pycocotools).', '',
        '| model | backbone depth (to stride 32) | params (M) | GFLOPs | input | FPS network | FPS end-to-end | '
        + ' | '.join(AP_TITLES) + ' |',
        '|' + '---|' * (7 + len(AP_TITLES))]
    for row in rows:
        lines.append(
            f'| {row["model"]}{" (deploy)" if row["deploy"] else ""} | {_cell(row["depth"], "d")} | '
            f'{_cell(row["params"] and row["params"] / 1e6, ".2f")} | '
            f'{_cell(row["flops"] and row["flops"] / 1e9, ".2f")} | '
            f'{row["resolution"]} | {_cell(row["fps_network"], ".1f")} | {_cell(row["fps_end2end"], ".1f")} | '
            + ' | '.join(_cell(row[t] and 100 * row[t], '.1f') for t in AP_TITLES) + ' |')
    return '\n'.join(lines) + '\n'


def render_speed_accuracy_plot(rows: List[dict], title: str) -> bytes:
    """AP against FPS (network), one point per model and resolution, a line per model."""
    figure = new_figure(6.5, 4.5)
    axes = figure.add_subplot()
    for model in sorted({row['model'] for row in rows}):
        points = sorted((r for r in rows if r['model'] == model and r['fps_network'] and r['AP'] is not None
                         and not r['deploy']), key=lambda r: r['fps_network'])
        if not points:
            continue
        axes.plot([p['fps_network'] for p in points], [100 * p['AP'] for p in points], marker='o', label=model)
        for point in points:
            axes.annotate(f'{point["resolution"]}px', (point['fps_network'], 100 * point['AP']), fontsize='small',
                          textcoords='offset points', xytext=(4, 4))
    finish_axes(axes, xlabel='images / s (network)', ylabel='COCO bbox AP', title=title)
    return to_png(figure)
