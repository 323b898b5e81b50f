"""Benchmark results as files: results.json, results.csv, results.md and fps_vs_resolution.png (and the
record of how they were measured)."""
import csv
import io
import os
import os.path as osp
import shlex
from dataclasses import asdict
from datetime import datetime
from typing import Dict, List, Optional, Sequence

import torch

from ..utils.collect_env import collect_env
from ..utils.fileio import atomic_write, strict_json
from .plotting import finish_axes, new_figure, to_png
from .rows import MODE_TITLES, measured
from .settings import MODES, min_repeat_seconds
from .tables import render_markdown
from .timing import memory_measure


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
            ms_per_batch=(f'{settings.warmup} untimed warm-up calls, then {settings.repeats} timed repeats, each of '
                          f'at least {settings.iters} calls and {min_repeat_seconds(settings, device):g} s; '
                          'the models of a setting alternate repeat by repeat (A B A B ...); median/min/max are '
                          'over the repeats\' mean ms per batch'),
            ratio_spread=('ratios are medians over the repeats, paired round by round where the rows were timed '
                          'together (min-max of the per-round ratios in brackets; "unpaired": rows of different '
                          'runs, the widest interval of their repeats); "faster"/"slower" only where the whole '
                          'spread lies above/below 1, else "within noise"'),
            folding=('the deploy form folds every model alike: the blocks that fold themselves (ParNet\'s) and '
                     'the BatchNorm of every ConvModule; "foldable left" counts BatchNorms still straight after '
                     'a convolution (or a concatenation of convolutions); the train form folds nothing'),
            images_per_s='batch_size * 1000 / ms_per_batch_median',
            flops_per_image='2 x multiply-adds of the network (mmengine FlopAnalyzer) at input_shape',
            workload=('how NMS got its boxes: "checkpoint" (the weights given), or "controlled" (random weights '
                      'set so that about N candidates per image pass the score threshold, the same method for '
                      'every model: parnet_det/benchmark/workload.py)'),
            nms_candidates_per_image=('(box, class) pairs per image over the score threshold, i.e. what NMS '
                                      'received, counted on the variant\'s own path and precision'),
            backbone_depth=('convolutions on the longest path through the backbone, input to stride 32 '
                            '(measured; a ParNet classifier counts one more, its FC: 12 for ParNet\'s 11)'),
            variants=('mmdet: the detector through mmdet (model._forward / test_step); onnxruntime, openvino: the '
                      'exported graph in that runtime; others: parnet_det.inference.DetectorEngine with the named '
                      'fast paths (eager: none)'),
            timed_scope=('what the timer held, recorded per row: per mode the same in every variant and runtime '
                         '(parnet_det/benchmark/variants.py); rows without one were timed before that held'),
            parity=('runtime rows: boxes and scores before NMS against PyTorch\'s on the timed batch; a row beyond '
                    'the tolerances is "parity_failed", out of every table and ratio'),
            path=('the variant and precision in words (e.g. "channels-last + torch.compile max-autotune + CUDA '
                  'graphs, fp16"): the path each row ran on; no variant runs TensorRT'),
            precision=('fp16/bf16: torch.autocast for the mmdet variant, the network cast to the dtype for the '
                       'engine variants; decoding and NMS in fp32'),
            reference_variant=settings.variants[0]))


def render_json(meta: dict, rows: List[dict]) -> str:
    """Strict JSON: a non-finite number is a bug, said here, not a file others cannot read."""
    return strict_json(dict(meta, rows=rows), indent=2) + '\n'


def render_csv(rows: List[dict]) -> str:
    buffer = io.StringIO()
    fieldnames = list(dict.fromkeys(key for row in rows for key in row))
    writer = csv.DictWriter(buffer, fieldnames=fieldnames, lineterminator='\n')
    writer.writeheader()
    for row in rows:
        # Lists hold numbers (per-repeat times) or names (a runtime's session settings).
        writer.writerow({key: ' '.join(f'{v:.4g}' if isinstance(v, float) else str(v) for v in value)
                         if isinstance(value, list) else value for key, value in row.items()})
    return buffer.getvalue()


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
            fps = [row['images_per_s'] for row in points]
            # Error bars: the slowest and the fastest repeat.
            low = [row['batch_size'] * 1000 / row['ms_per_batch_max'] for row in points]
            high = [row['batch_size'] * 1000 / row['ms_per_batch_min'] for row in points]
            axes.errorbar([row['resolution'] for row in points], fps, capsize=3, marker='o', label=label,
                          yerr=[[f - lo for f, lo in zip(fps, low)], [hi - f for f, hi in zip(fps, high)]])
        finish_axes(axes, title=mode, xlabel='input side (px)', ylabel='images / s')
    figure.suptitle(title)
    return to_png(figure)


def write_files(work_dir: str, contents: Dict[str, bytes]) -> List[str]:
    """Write each ``name: content`` into ``work_dir`` (:func:`~parnet_det.utils.fileio.atomic_write`: a failure
    leaves no half-written file). Returns the paths."""
    os.makedirs(work_dir, exist_ok=True)
    paths = []
    for name, content in contents.items():
        path = osp.join(work_dir, name)
        with atomic_write(path) as file:
            file.write(content)
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
