"""Benchmark results as files: results.json, results.csv, results.md and fps_vs_resolution.png."""
import csv
import io
import json
import os
import os.path as osp
import shlex
from dataclasses import asdict
from datetime import datetime
from typing import Dict, List, Optional, Sequence

import torch

from ..utils.collect_env import collect_env
from .model_stats import PARTS
from .plotting import finish_axes, new_figure, to_png
from .settings import MODES
from .timing import memory_measure
from .training import TRAIN_MODE

# Rows compared with the baseline agree on all of these.
RATIO_MATCH_KEYS = ('resolution', 'batch_size', 'precision', 'form', 'mode', 'variant', 'with_cp')
# Rows compared with the reference variant (the first of --variants) agree on all of these.
VARIANT_MATCH_KEYS = ('model', 'resolution', 'batch_size', 'precision', 'form', 'mode', 'with_cp')
MODE_TITLES = {
    'network': ('Network only (on a pre-processed batch on the device: backbone + neck + head; the engine '
                'variants also decode the boxes, before NMS)'),
    'end2end': ('End to end (uint8 HWC images in host memory -> pre-processing, network, box decoding and '
                'NMS: boxes in original pixels)'),
    TRAIN_MODE: ('Training step (data pre-processing, forward, loss, backward, optimizer step; AMP for fp16/bf16; '
                 'the batch already in memory)'),
}


def measured(rows: List[dict]) -> List[dict]:
    """The rows that hold a measurement (not the timed-out ones)."""
    return [row for row in rows if row.get('status', 'ok') == 'ok']


def _ratios(rows: List[dict], is_reference, match_keys: Sequence[str]) -> List[Optional[float]]:
    """Each row's images/s over that of the reference row agreeing with it on ``match_keys``."""
    reference_fps = {tuple(row.get(key) for key in match_keys): row['images_per_s'] for row in measured(rows)
                     if is_reference(row)}
    ratios = []
    for row in rows:
        reference = reference_fps.get(tuple(row.get(key) for key in match_keys))
        ratios.append(row['images_per_s'] / reference if reference and 'images_per_s' in row else None)
    return ratios


def add_baseline_ratios(rows: List[dict], baseline: Optional[str]) -> None:
    """Set every row's ``fps_ratio_to_baseline``: its images/s over the baseline's.

    Args:
        rows (list[dict]): Rows of :func:`~.runner.run_benchmark`, updated in place.
        baseline (str, optional): The baseline's model name; without one every ratio is None.
    """
    for row, ratio in zip(rows, _ratios(rows, lambda row: row['model'] == baseline, RATIO_MATCH_KEYS)):
        row['fps_ratio_to_baseline'] = ratio


def add_variant_speedups(rows: List[dict], reference_variant: str) -> None:
    """Set every row's ``speedup_over_reference_variant``: its images/s over the same model's in
    ``reference_variant`` (the first of ``--variants``) at the same setting.

    Args:
        rows (list[dict]): Rows of :func:`~.runner.run_benchmark`, updated in place.
        reference_variant (str): The variant the others are compared with.
    """
    reference = lambda row: row['variant'] == reference_variant
    for row, ratio in zip(rows, _ratios(rows, reference, VARIANT_MATCH_KEYS)):
        row['speedup_over_reference_variant'] = ratio


def benchmark_meta(argv: Sequence[str], settings, baseline: Optional[str], training_settings=None) -> dict:
    """Everything needed to read or repeat the numbers: command, hardware, software, settings.

    Args:
        argv (Sequence[str]): The command line.
        settings (BenchmarkSettings): The inference settings.
        baseline (str, optional): The baseline's model name.
        training_settings (TrainSettings, optional): Those of the training rows, if any.
    """
    device = torch.device(settings.device)
    return dict(
        created=datetime.now().isoformat(timespec='seconds'),
        command=shlex.join(argv),
        environment=dict(collect_env()),
        settings=dict(asdict(settings), torch_threads=settings.threads or torch.get_num_threads(),
                      cudnn_benchmark=device.type == 'cuda', memory_measure=memory_measure(device)),
        training_settings=asdict(training_settings) if training_settings is not None else None,
        baseline=baseline,
        definitions=dict(
            modes=MODE_TITLES,
            ms_per_batch=('each timed repeat runs `iters` iterations after `warmup` untimed ones; '
                          'median/min/max are over the repeats\' mean ms per batch'),
            images_per_s='batch_size * 1000 / ms_per_batch_median',
            flops_per_image='2 x multiply-adds of the network (mmengine FlopAnalyzer) at input_shape',
            workload=('how NMS got its boxes: "checkpoint" (the weights given), or "controlled" (random weights '
                      'set so that about N candidates per image pass the score threshold, the same method for '
                      'every model: parnet_det/benchmark/workload.py)'),
            nms_candidates_per_image='boxes per image over the score threshold, i.e. what NMS received',
            backbone_depth='longest path of conv/linear layers through the backbone (measured)',
            variants=('mmdet: the detector through mmdet (model._forward / test_step); others: '
                      'parnet_det.inference.DetectorEngine with the named fast paths (eager: none)'),
            precision=('fp16/bf16: torch.autocast for the mmdet variant, the network cast to the dtype for the '
                       'engine variants; decoding and NMS in fp32'),
            reference_variant=settings.variants[0]))


def render_json(meta: dict, rows: List[dict]) -> str:
    return json.dumps(dict(meta, rows=rows), indent=2) + '\n'


def render_csv(rows: List[dict]) -> str:
    buffer = io.StringIO()
    fieldnames = list(dict.fromkeys(key for row in rows for key in row))
    writer = csv.DictWriter(buffer, fieldnames=fieldnames, lineterminator='\n')
    writer.writeheader()
    for row in rows:
        writer.writerow({key: ' '.join(f'{v:.4g}' for v in value) if isinstance(value, list) else value
                         for key, value in row.items()})
    return buffer.getvalue()


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


def render_plot(rows: List[dict], title: str) -> bytes:
    """Images/s against resolution, one line per model (and per form, precision, batch when these vary)."""
    series_keys = ('model', 'form', 'variant', 'precision', 'batch_size')
    # Name a line by what tells it apart: only the keys that take several values.
    varying = [key for key in series_keys if len({row[key] for row in measured(rows)}) > 1] or ['model']
    figure = new_figure(6 * len(MODES), 4.5)
    for index, mode in enumerate(MODES, start=1):
        axes = figure.add_subplot(1, len(MODES), index)
        series: Dict[tuple, List[dict]] = {}
        for row in measured(rows):
            if row['mode'] == mode:
                series.setdefault(tuple(row[key] for key in series_keys), []).append(row)
        for points in series.values():
            points.sort(key=lambda row: row['resolution'])
            label = ' '.join(f'b{points[0][key]}' if key == 'batch_size' else str(points[0][key])
                             for key in varying)
            axes.plot([row['resolution'] for row in points], [row['images_per_s'] for row in points],
                      marker='o', label=label)
        finish_axes(axes, title=mode, xlabel='input side (px)', ylabel='images / s')
    figure.suptitle(title)
    return to_png(figure)


def write_files(work_dir: str, contents: Dict[str, bytes]) -> List[str]:
    """Write each ``name: content`` into ``work_dir`` under a temporary name, then rename: a failure leaves
    no half-written file. Returns the paths."""
    os.makedirs(work_dir, exist_ok=True)
    paths = []
    for name, content in contents.items():
        path = osp.join(work_dir, name)
        with open(path + '.part', 'wb') as file:
            file.write(content)
        os.replace(path + '.part', path)
        paths.append(path)
    return paths


def write_report(work_dir: str, meta: dict, rows: List[dict]) -> List[str]:
    """Write results.json, results.csv, results.md and fps_vs_resolution.png into ``work_dir``, everything
    rendered before anything is written; returns their paths."""
    return write_files(work_dir, {
        'results.json': render_json(meta, rows).encode(),
        'results.csv': render_csv(rows).encode(),
        'results.md': render_markdown(meta, rows).encode(),
        'fps_vs_resolution.png': render_plot(rows, meta['environment']['Device']),
    })
