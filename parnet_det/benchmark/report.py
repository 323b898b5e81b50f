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
from .detector import MODES, BenchmarkSettings
from .timing import memory_measure

# Rows compared with the baseline agree on all of these.
RATIO_MATCH_KEYS = ('resolution', 'batch_size', 'precision', 'form', 'mode', 'variant')
# Rows compared with the reference variant (the first of --variants) agree on all of these.
VARIANT_MATCH_KEYS = ('model', 'resolution', 'batch_size', 'precision', 'form', 'mode')
MODE_TITLES = {
    'network': ('Network only (on a pre-processed batch on the device: backbone + neck + head; the engine '
                'variants also decode the boxes, before NMS)'),
    'end2end': ('End to end (uint8 HWC images in host memory -> pre-processing, network, box decoding and '
                'NMS: boxes in original pixels)'),
}


def _ratios(rows: List[dict], is_reference, match_keys: Sequence[str]) -> List[Optional[float]]:
    """Each row's images/s over that of the reference row agreeing with it on ``match_keys``."""
    reference_fps = {tuple(row[key] for key in match_keys): row['images_per_s'] for row in rows if is_reference(row)}
    ratios = []
    for row in rows:
        reference = reference_fps.get(tuple(row[key] for key in match_keys))
        ratios.append(row['images_per_s'] / reference if reference else None)
    return ratios


def add_baseline_ratios(rows: List[dict], baseline: Optional[str]) -> None:
    """Set every row's ``fps_ratio_to_baseline``: its images/s over the baseline's.

    Args:
        rows (list[dict]): Rows of :func:`~.detector.run_benchmark`, updated in place.
        baseline (str, optional): The baseline's model name; without one every ratio is None.
    """
    for row, ratio in zip(rows, _ratios(rows, lambda row: row['model'] == baseline, RATIO_MATCH_KEYS)):
        row['fps_ratio_to_baseline'] = ratio


def add_variant_speedups(rows: List[dict], reference_variant: str) -> None:
    """Set every row's ``speedup_over_reference_variant``: its images/s over the same model's in
    ``reference_variant`` (the first of ``--variants``) at the same setting.

    Args:
        rows (list[dict]): Rows of :func:`~.detector.run_benchmark`, updated in place.
        reference_variant (str): The variant the others are compared with.
    """
    reference = lambda row: row['variant'] == reference_variant
    for row, ratio in zip(rows, _ratios(rows, reference, VARIANT_MATCH_KEYS)):
        row['speedup_over_reference_variant'] = ratio


def benchmark_meta(argv: Sequence[str], settings: BenchmarkSettings, baseline: Optional[str]) -> dict:
    """Everything needed to read or repeat the numbers: command, hardware, software, settings."""
    device = torch.device(settings.device)
    return dict(
        created=datetime.now().isoformat(timespec='seconds'),
        command=shlex.join(argv),
        environment=dict(collect_env()),
        settings=dict(asdict(settings), torch_threads=settings.threads or torch.get_num_threads(),
                      cudnn_benchmark=device.type == 'cuda', memory_measure=memory_measure(device)),
        baseline=baseline,
        definitions=dict(
            modes=MODE_TITLES,
            ms_per_batch=('each timed repeat runs `iters` iterations after `warmup` untimed ones; '
                          'median/min/max are over the repeats\' mean ms per batch'),
            images_per_s='batch_size * 1000 / ms_per_batch_median',
            flops_per_image='2 x multiply-adds of the network (mmengine FlopAnalyzer) at input_shape',
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
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator='\n')
    writer.writeheader()
    for row in rows:
        writer.writerow({key: ' '.join(f'{v:.4g}' for v in value) if isinstance(value, list) else value
                         for key, value in row.items()})
    return buffer.getvalue()


def _markdown_table(rows: List[dict], mode: str) -> List[str]:
    end2end = mode == 'end2end'
    header = ['model', 'form', 'variant', 'precision', 'px', 'batch', 'ms/batch median (min-max)', 'img/s',
              '× baseline', '× ref. variant',
              'GFLOPs/img', 'params (M)', 'depth', 'peak mem (MiB)'] + (['det/img'] if end2end else [])
    lines = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
    for row in rows:
        if row['mode'] != mode:
            continue
        ratios = ['-' if ratio is None else f'{ratio:.2f}'
                  for ratio in (row['fps_ratio_to_baseline'], row['speedup_over_reference_variant'])]
        cells = [row['model'], row['form'], row['variant'], row['precision'], str(row['resolution']),
                 str(row['batch_size']),
                 f'{row["ms_per_batch_median"]:.2f} ({row["ms_per_batch_min"]:.2f}-{row["ms_per_batch_max"]:.2f})',
                 f'{row["images_per_s"]:.1f}', *ratios,
                 f'{row["flops_per_image"] / 1e9:.2f}', f'{row["params"] / 1e6:.3f}', str(row['backbone_depth']),
                 f'{row["peak_memory_mib"]:.1f}']
        if end2end:
            cells.append(f'{row["detections_per_image"]:.1f}')
        lines.append('| ' + ' | '.join(cells) + ' |')
    return lines


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
        'det/img: boxes left after NMS (random weights unless a checkpoint is given)',
    ]
    for mode in MODES:
        lines += ['', f'## {MODE_TITLES[mode]}', ''] + _markdown_table(rows, mode)
    return '\n'.join(lines) + '\n'


def render_plot(rows: List[dict], title: str) -> bytes:
    """Images/s against resolution, one line per model (and per form, precision, batch when these vary)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    series_keys = ('model', 'form', 'variant', 'precision', 'batch_size')
    # Name a line by what tells it apart: only the keys that take several values.
    varying = [key for key in series_keys if len({row[key] for row in rows}) > 1] or ['model']
    figure = Figure(figsize=(6 * len(MODES), 4.5), layout='constrained')
    FigureCanvasAgg(figure)
    for index, mode in enumerate(MODES, start=1):
        axes = figure.add_subplot(1, len(MODES), index)
        series: Dict[tuple, List[dict]] = {}
        for row in rows:
            if row['mode'] == mode:
                series.setdefault(tuple(row[key] for key in series_keys), []).append(row)
        for points in series.values():
            points.sort(key=lambda row: row['resolution'])
            label = ' '.join(f'b{points[0][key]}' if key == 'batch_size' else str(points[0][key])
                             for key in varying)
            axes.plot([row['resolution'] for row in points], [row['images_per_s'] for row in points],
                      marker='o', label=label)
        axes.set(title=mode, xlabel='input side (px)', ylabel='images / s')
        axes.grid(alpha=0.3)
        axes.legend(fontsize='small')
    figure.suptitle(title)
    buffer = io.BytesIO()
    figure.savefig(buffer, format='png', dpi=100)
    return buffer.getvalue()


def write_report(work_dir: str, meta: dict, rows: List[dict]) -> List[str]:
    """Write the four result files into ``work_dir``; returns their paths.

    Everything is rendered before anything is written, and each file is
    written under a temporary name and then renamed, so a failure leaves no
    half-written file.
    """
    contents = {
        'results.json': render_json(meta, rows).encode(),
        'results.csv': render_csv(rows).encode(),
        'results.md': render_markdown(meta, rows).encode(),
        'fps_vs_resolution.png': render_plot(rows, meta['environment']['Device']),
    }
    os.makedirs(work_dir, exist_ok=True)
    paths = []
    for name, content in contents.items():
        path = osp.join(work_dir, name)
        with open(path + '.part', 'wb') as file:
            file.write(content)
        os.replace(path + '.part', path)
        paths.append(path)
    return paths
