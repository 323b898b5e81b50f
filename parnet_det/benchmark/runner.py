"""The benchmark loop: every model in every form, resolution, batch size, variant, precision and mode.

Everything runs in eval mode under ``torch.inference_mode``; what each mode
times is in :mod:`.variants`, the post-processing workload in :mod:`.workload`.
"""
from itertools import groupby, product
from typing import Callable, Collection, List, Optional, Sequence

import torch

from .measurement import ModelBench
from .rows import row_key
from .settings import MODES, BenchmarkSettings, ModelSpec, check_settings
from .timing import hardware_name


def _cases(settings: BenchmarkSettings) -> List[tuple]:
    """(resolution, batch_size, variant, precision, mode) in the order they are measured."""
    return list(product(settings.resolutions, settings.batch_sizes, settings.variants, settings.precisions, MODES))


def _case_key(spec: ModelSpec, form: str, case: tuple, hardware: str) -> tuple:
    resolution, batch_size, variant, precision, mode = case
    return row_key(dict(hardware=hardware, model=spec.name, form=form, variant=variant, precision=precision,
                        resolution=resolution, batch_size=batch_size, mode=mode))


def run_benchmark(models: Sequence[ModelSpec], settings: BenchmarkSettings, log: Callable[[str], None] = print,
                  on_row: Optional[Callable[[dict], None]] = None, done: Collection[tuple] = ()) -> List[dict]:
    """Measure every model in every form, resolution, batch size, variant, precision and mode.

    Args:
        models (Sequence[ModelSpec]): From :func:`~.settings.load_model_specs`.
        settings (BenchmarkSettings): What to measure.
        log (Callable): Receives one progress line per measurement.
        on_row (Callable, optional): Receives each row as soon as it is measured.
        done (Collection[tuple]): :func:`row_key` of rows measured before: skipped (resuming a run).

    Returns:
        list[dict]: One row per measurement, with keys ``model``, ``config``,
        ``checkpoint``, ``form``, ``folded_blocks``, ``params`` (whole detector),
        ``params_backbone`` / ``_neck`` / ``_head``, ``backbone_depth``,
        ``workload`` (how NMS got its boxes), ``flops_per_image`` and
        ``flops_backbone`` / ``_neck`` / ``_head``, ``variant``, ``precision``,
        ``device``, ``mode`` ('network' or 'end2end'), ``resolution``,
        ``input_shape`` (the network's input), ``batch_size``,
        ``nms_candidates_per_image``, ``ms_per_batch_median`` / ``_min`` / ``_max``,
        ``ms_per_batch_repeats``, ``images_per_s`` (from the median),
        ``peak_memory_mib``, ``detections_per_image`` (end2end only, else None)
        and ``status`` ('ok', or 'timeout' with ``error`` and no timing).
    """
    device = check_settings(settings)
    if settings.threads is not None:
        torch.set_num_threads(settings.threads)
    if device.type == 'cuda':
        torch.backends.cudnn.benchmark = True  # fixed shapes: let cuDNN pick its kernels during warm-up
    done = set(done)
    pending = [(spec, form, case) for spec in models for form in settings.forms for case in _cases(settings)
               if _case_key(spec, form, case, hardware_name(device)) not in done]
    rows = []
    for _, group in groupby(pending, key=lambda item: (id(item[0]), item[1])):
        group = list(group)
        bench = ModelBench(group[0][0], group[0][1], settings, device)
        for _, _, case in group:
            row = bench.measure_case(case)
            rows.append(row)
            if on_row is not None:
                on_row(row)
            log(format_progress(row, len(rows), len(pending)))
        del bench
        if device.type == 'cuda':
            torch.cuda.empty_cache()
    return rows


def format_progress(row: dict, index: int, total: int) -> str:
    """One line per measurement, e.g. ``[ 3/16] name deploy mmdet fp32 64px b2 network  4.1 ms/batch ...``."""
    width = len(str(total))
    head = (f'[{index:{width}d}/{total}] {row["model"]} {row["form"]} {row["variant"]} {row["precision"]} '
            f'{row["resolution"]}px b{row["batch_size"]} {row["mode"]:<8s}')
    if row['status'] != 'ok':
        return f'{head} {row["status"].upper()}: {row["error"]}'
    return (f'{head} {row["ms_per_batch_median"]:9.2f} ms/batch '
            f'(min {row["ms_per_batch_min"]:.2f}, max {row["ms_per_batch_max"]:.2f}) '
            f'{row["images_per_s"]:9.1f} img/s  peak mem {row["peak_memory_mib"]:.1f} MiB')
