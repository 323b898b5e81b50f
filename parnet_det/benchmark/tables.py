"""results.md: the benchmark rows as Markdown tables (size by part, network, end to end, training step)."""
from typing import List

from .model_stats import PARTS
from .rows import MODE_TITLES, TRAIN_MODE, measured
from .settings import MODES


def _ratio_cells(row: dict) -> List[str]:
    return ['-' if ratio is None else f'{ratio:.2f}'
            for ratio in (row.get('fps_ratio_to_baseline'), row.get('speedup_over_reference_variant'))]


def _timing_cells(row: dict) -> List[str]:
    return [f'{row["ms_per_batch_median"]:.2f} ({row["ms_per_batch_min"]:.2f}-{row["ms_per_batch_max"]:.2f})',
            f'{row["images_per_s"]:.1f}', *_ratio_cells(row), f'{row["peak_memory_mib"]:.1f}']


def _table(header: List[str], lines: List[List[str]]) -> List[str]:
    rows = [header, *lines]
    return ['| ' + ' | '.join(rows[0]) + ' |', '|' + '---|' * len(header)] + [
        '| ' + ' | '.join(cells) + ' |' for cells in rows[1:]]


def _inference_table(rows: List[dict], mode: str) -> List[str]:
    end2end = mode == 'end2end'
    header = ['model', 'form', 'variant', 'precision', 'px', 'batch', 'ms/batch median (min-max)', 'img/s',
              '× baseline', '× ref. variant', 'peak mem (MiB)', 'GFLOPs/img', 'cand./img'] + (
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
    header = ['model', 'precision', 'px', 'batch', 'with_cp', 'ms/step median (min-max)', 'img/s', '× baseline',
              '× ref. variant', 'peak mem (MiB)']
    lines = [[row['model'], row['precision'], str(row['resolution']), str(row['batch_size']), str(row['with_cp']),
              *_timing_cells(row)] for row in measured(rows) if row['mode'] == TRAIN_MODE]
    return _table(header, lines)


def _size_table(rows: List[dict]) -> List[str]:
    """Parameters and GFLOPs per part, one line per model, form and resolution."""
    header = ['model', 'form', 'px', 'depth', 'params (M)'] + [f'params {part} (M)' for part in PARTS] + [
        'GFLOPs/img'] + [f'GFLOPs {part}' for part in PARTS] + ['workload']
    seen, lines = set(), []
    for row in measured(rows):
        key = (row['model'], row['form'], row['resolution'])
        if row['mode'] == TRAIN_MODE or key in seen:
            continue
        seen.add(key)
        lines.append([row['model'], row['form'], str(row['resolution']), str(row['backbone_depth']),
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
        f'- timing: {settings["warmup"]} warm-up iterations, then {settings["repeats"]} repeats of '
        f'{settings["iters"]} iterations; ms/batch is the median over the repeats (min-max in brackets); '
        'img/s = batch / median',
        f'- × baseline: img/s over {meta["baseline"]}\'s at the same resolution, batch, precision, form, '
        'variant and mode' if meta['baseline'] else '- no baseline given',
        f'- × ref. variant: img/s over the same model\'s in variant {meta["definitions"]["reference_variant"]} '
        'at the same setting',
        f'- variants: {meta["definitions"]["variants"]}; precision: {meta["definitions"]["precision"]}',
        f'- peak memory: {settings["memory_measure"]}',
        '- GFLOPs/img: 2 x multiply-adds of the network; depth: measured on the backbone; '
        'cand./img: boxes over the score threshold (what NMS received); det/img: boxes left after NMS',
        f'- workload: {meta["definitions"]["workload"]}',
        '', '## Model size by part', '', *_size_table(rows),
    ]
    for mode in MODES:
        lines += ['', f'## {MODE_TITLES[mode]}', ''] + _inference_table(rows, mode)
    if any(row['mode'] == TRAIN_MODE for row in rows):
        lines += ['', f'## {MODE_TITLES[TRAIN_MODE]}', ''] + _training_table(rows)
    failed = [row for row in rows if row.get('status', 'ok') != 'ok']
    if failed:
        lines += ['', '## Not measured', ''] + [
            f'- {row["model"]} {row["variant"]} {row["precision"]} {row["resolution"]}px b{row["batch_size"]} '
            f'{row["mode"]}: {row["status"]} ({row.get("error", "")})' for row in failed]
    return '\n'.join(lines) + '\n'
