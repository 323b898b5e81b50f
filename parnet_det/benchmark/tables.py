"""results.md: the benchmark rows as Markdown tables (size by part, network, end to end, training step)."""
from typing import List

from .model_stats import PARTS
from .rows import MODE_TITLES, TRAIN_MODE, format_spread, legacy_scope_note, measured, numeric_order, verdict
from .settings import MODES


def ratio_cell(row: dict, field: str) -> str:
    """A ratio with its spread and what it says, e.g. ``1.23 (1.10-1.31) faster``, ``0.98 (0.91-1.04) within
    noise``; an unpaired spread (rows not timed together) is marked ``unpaired``; '-' without a ratio."""
    if row.get(field) is None:
        return '-'
    low, high = row[f'{field}_min'], row[f'{field}_max']
    spread = format_spread(low, high, row.get(f'{field}_paired'))
    return f'{row[field]:.2f}{f" ({spread})" if spread else ""} {verdict(low, high)}'


def memory_cell(row: dict) -> str:
    return 'n/a' if row.get('peak_memory_mib') is None else f'{row["peak_memory_mib"]:.1f}'


def _timing_cells(row: dict) -> List[str]:
    return [f'{row["ms_per_batch_median"]:.2f} ({row["ms_per_batch_min"]:.2f}-{row["ms_per_batch_max"]:.2f})',
            f'{row["images_per_s"]:.1f}', ratio_cell(row, 'fps_ratio_to_baseline'),
            ratio_cell(row, 'speedup_over_reference_variant'), memory_cell(row)]


def _table(header: List[str], lines: List[List[str]]) -> List[str]:
    rows = [header, *lines]
    return ['| ' + ' | '.join(rows[0]) + ' |', '|' + '---|' * len(header)] + [
        '| ' + ' | '.join(cells) + ' |' for cells in rows[1:]]


def _inference_table(rows: List[dict], mode: str) -> List[str]:
    end2end = mode == 'end2end'
    header = ['model', 'form', 'variant', 'precision', 'px', 'batch', 'ms/batch median (min-max)', 'img/s',
              '× baseline (spread)', '× ref. variant (spread)', 'peak mem (MiB)', 'GFLOPs/img', 'cand./img'] + (
                  ['det/img'] if end2end else [])
    lines = []
    for row in measured(rows):
        if row['mode'] != mode:
            continue
        candidates = row.get('nms_candidates_per_image')
        cells = [row['model'], row['form'], row['variant'], row['precision'], str(row['resolution']),
                 str(row['batch_size']), *_timing_cells(row), f'{row["flops_per_image"] / 1e9:.2f}',
                 '-' if candidates is None else f'{candidates:.0f}']
        if end2end:
            cells.append(f'{row["detections_per_image"]:.1f}')
        lines.append(cells)
    return _table(header, lines)


def _training_table(rows: List[dict]) -> List[str]:
    header = ['model', 'precision', 'px', 'batch', 'with_cp', 'ms/step median (min-max)', 'img/s',
              '× baseline (spread)', '× ref. variant (spread)', 'peak mem (MiB)']
    lines = [[row['model'], row['precision'], str(row['resolution']), str(row['batch_size']), str(row['with_cp']),
              *_timing_cells(row)] for row in measured(rows) if row['mode'] == TRAIN_MODE]
    return _table(header, lines)


def _size_table(rows: List[dict]) -> List[str]:
    """Parameters and GFLOPs per part, one line per model, form and resolution."""
    header = ['model', 'form', 'folded blocks / norms (foldable left)', 'px', 'backbone depth',
              'params (M)'] + [f'params {part} (M)' for part in PARTS] + [
        'GFLOPs/img'] + [f'GFLOPs {part}' for part in PARTS] + ['workload']
    seen, lines = set(), []
    for row in sorted(measured(rows), key=lambda row: numeric_order(row['resolution'])):
        key = (row['model'], row['form'], row['resolution'])
        if row['mode'] == TRAIN_MODE or key in seen:
            continue
        seen.add(key)
        folded = (f'{row["folded_blocks"]} / {row["folded_norms"]} ({row["foldable_norms_left"]})'
                  if 'folded_norms' in row else f'{row.get("folded_blocks", "-")} / - (-)')
        lines.append([row['model'], row['form'], folded, str(row['resolution']), str(row['backbone_depth']),
                      f'{row["params"] / 1e6:.2f}', *(f'{row[f"params_{part}"] / 1e6:.2f}' for part in PARTS),
                      f'{row["flops_per_image"] / 1e9:.1f}', *(f'{row[f"flops_{part}"] / 1e9:.1f}' for part in PARTS),
                      row['workload']])
    return _table(header, lines)


def render_markdown(meta: dict, rows: List[dict]) -> str:
    env, settings = meta['environment'], meta['settings']
    lines = [
        '# Detector speed benchmark', '',
        f'- command: `{meta["command"]}` ({meta["created"]})',
        f'- hardware: {env["Device"]}; CPU {env["CPU"]}; torch threads {settings["torch_threads"]}',
        f'- software: torch {env["torch"]} (CUDA {env["torch CUDA"]}), mmcv {env["mmcv"]}, '
        f'mmengine {env["mmengine"]}, mmdet {env["mmdet"]}, parnet_det {env["parnet_det"]}',
        f'- timing: {meta["definitions"]["ms_per_batch"]}; img/s = batch / median',
        f'- × baseline: img/s over that of the row\'s baseline ({meta["baseline"]}) at the same resolution, '
        'batch, precision, form, variant and mode' if meta['baseline'] else '- no baseline given',
        f'- spread: {meta["definitions"]["ratio_spread"]}',
        f'- × ref. variant: img/s over the same model\'s in variant {meta["definitions"]["reference_variant"]} '
        'at the same setting',
        f'- variants: {meta["definitions"]["variants"]}; precision: {meta["definitions"]["precision"]}',
        f'- peak memory: {settings["memory_measure"]}',
        '- GFLOPs/img: 2 x multiply-adds of the network; backbone depth: '
        f'{meta["definitions"]["backbone_depth"]}; cand./img: (box, class) pairs over the score threshold (what '
        'NMS received, counted on the variant\'s own path); det/img: boxes left after NMS',
        f'- folding: {meta["definitions"]["folding"]}',
        f'- workload: {meta["definitions"]["workload"]}',
        *(['- **mixed workloads**: some models ran with their checkpoint and others with the controlled '
           'workload (--mixed-workloads): their end-to-end rows time different NMS work']
          if any(row.get('mixed_workloads') for row in rows) else []),
        '', '## Model size by part', '', *_size_table(rows),
    ]
    for mode in MODES:
        note = legacy_scope_note([row for row in measured(rows) if row['mode'] == mode])
        lines += ['', f'## {MODE_TITLES[mode]}', '', *([note, ''] if note else [])] + _inference_table(rows, mode)
    if any(row['mode'] == TRAIN_MODE for row in rows):
        lines += ['', f'## {MODE_TITLES[TRAIN_MODE]}', ''] + _training_table(rows)
    failed = [row for row in rows if row.get('status', 'ok') != 'ok']
    if failed:
        lines += ['', '## Not measured, or kept out (runtime parity failed)', ''] + [
            f'- {row["model"]} {row["variant"]} {row["precision"]} {row["resolution"]}px b{row["batch_size"]} '
            f'{row["mode"]}: {row["status"]} ({row.get("error", "")})' for row in failed]
    return '\n'.join(lines) + '\n'
