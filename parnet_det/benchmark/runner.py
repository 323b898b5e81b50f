"""The benchmark loop: every model in every form, resolution, batch size, variant, precision and mode.

Everything runs in eval mode under ``torch.inference_mode``; what each mode
times is in :mod:`.variants`, the post-processing workload in :mod:`.workload`.
"""
import uuid
from itertools import product
from typing import Callable, Collection, List, Optional, Sequence

import torch

from ..utils.time_limit import time_limit
from .measurement import ModelBench, model_fields
from .rows import failed_row_fields, path_label, row_key
from .settings import BenchmarkSettings, ModelSpec, check_settings
from .timing import BlockFailed, BlockTimer, hardware_name, interleave
from .variants import reset_compiled, runtime_skip


def _cases(settings: BenchmarkSettings) -> List[tuple]:
    """(resolution, batch_size, variant, precision, mode) in the order they are measured."""
    return list(product(settings.resolutions, settings.batch_sizes, settings.variants, settings.precisions,
                        settings.modes))


def _case_key(spec: ModelSpec, form: str, case: tuple, hardware: str) -> tuple:
    resolution, batch_size, variant, precision, mode = case
    return row_key(dict(hardware=hardware, model=spec.name, form=form, variant=variant, precision=precision,
                        resolution=resolution, batch_size=batch_size, mode=mode))


def _benches(models: Sequence[ModelSpec], settings: BenchmarkSettings, device: torch.device) -> List[tuple]:
    """(spec, form, ModelBench or the exception that stopped its build) for every model and form."""
    benches = []
    for spec in models:
        for form in settings.forms:
            try:
                benches.append((spec, form, ModelBench(spec, form, settings, device)))
            except Exception as failure:  # noqa: BLE001 (its rows say so; the other models are measured)
                benches.append((spec, form, failure))
    return benches


def time_together(rows: List[dict], prepare: Callable[[int], BlockTimer],
                  finish: Callable[[int, BlockTimer, list], None], repeats: int, time_limit_s: Optional[float],
                  forget: Callable[[int], None] = lambda index: None) -> None:
    """Set up and warm up every row's step, then time their repeats in alternation; each row is updated in place.

    Rows that already have a ``status`` (failed before) are left out. ``prepare(index)`` (set-up and warm-up)
    and every repeat run under the row's guard and ``time_limit_s``: a failure marks that row (``forget(index)``
    drops what it left half-built) and the others go on. ``finish(index, timer, block_ms)`` fills a row's
    timing; rows measured together share a ``timing_group``: round i of every row ran back to back.
    """
    group, timers = uuid.uuid4().hex[:12], {}
    for index, row in enumerate(rows):
        if row.get('status') is None:
            try:
                with time_limit(time_limit_s):
                    timers[index] = prepare(index)
            except Exception as failure:  # noqa: BLE001 (kept as a row: one row's failure must not end the run)
                forget(index)
                row.update(failed_row_fields(failure))
    order = list(timers)

    def run_block(position: int, timer: BlockTimer) -> float:
        try:
            with time_limit(time_limit_s):
                return timer.time_block()
        except Exception as failure:  # noqa: BLE001 (as above)
            forget(order[position])
            rows[order[position]].update(failed_row_fields(failure))
            raise BlockFailed from failure

    for index, blocks in zip(order, interleave([timers[index] for index in order], repeats, run_block)):
        if rows[index].get('status') is None:
            try:
                finish(index, timers[index], blocks)
                rows[index]['timing_group'] = group
            except Exception as failure:  # noqa: BLE001 (as above)
                rows[index].update(failed_row_fields(failure))


def measure_setting(benches: Sequence[tuple], case: tuple, settings: BenchmarkSettings,
                    device: torch.device) -> List[dict]:
    """One row per model and form at ``case``: each set up (images, FLOPs, workload, runner) and warmed up,
    then their timed repeats interleaved (:func:`time_together`)."""
    resolution, batch_size, variant, precision, mode = case
    rows = []
    reset_compiled(variant)
    for spec, form, bench in benches:
        row = dict(model_fields(spec, form), variant=variant, path=path_label(variant, precision), precision=precision,
                   device=str(device), hardware=hardware_name(device), mode=mode, resolution=resolution,
                   batch_size=batch_size)
        if isinstance(bench, Exception):
            row.update(failed_row_fields(bench))
        else:
            row.update(bench.fields, variant=variant, precision=precision)
        rows.append(row)
    time_together(rows, lambda index: benches[index][2].prepare(case, rows[index]),
                  lambda index, timer, blocks: benches[index][2].finish(rows[index], timer, blocks, mode),
                  settings.repeats, settings.row_time_limit_s,
                  forget=lambda index: benches[index][2].drop_runner(variant, precision))
    return rows


def run_benchmark(models: Sequence[ModelSpec], settings: BenchmarkSettings, log: Callable[[str], None] = print,
                  on_row: Optional[Callable[[dict], None]] = None, done: Collection[tuple] = ()) -> List[dict]:
    """Measure every model in every form, resolution, batch size, variant, precision and mode.

    Every model is built first; then, per setting, the models' timed repeats
    alternate (:func:`measure_setting`), so that a drift of the machine hits
    them alike and their ratios pair repeat by repeat.

    Args:
        models (Sequence[ModelSpec]): From :func:`~.settings.load_model_specs`.
        settings (BenchmarkSettings): What to measure.
        log (Callable): Receives one progress line per measurement.
        on_row (Callable, optional): Receives each row as soon as it is measured.
        done (Collection[tuple]): :func:`row_key` of rows measured before: a setting whose rows are all
            there is skipped (resuming a run); one with some missing is measured again for every model, so
            that its rows stay interleaved.

    Returns:
        list[dict]: One row per measurement, with keys ``model``, ``config``,
        ``checkpoint``, ``form``, ``folded_blocks`` / ``folded_norms`` (what
        the deploy form folded), ``foldable_norms_left`` (BatchNorms still
        straight after a convolution), ``params`` (whole detector),
        ``params_backbone`` / ``_neck`` / ``_head``, ``backbone_depth``
        (convolutions on the longest path of the backbone, to stride 32),
        ``workload`` (how NMS got its boxes), ``mixed_workloads``,
        ``flops_per_image`` and ``flops_backbone`` / ``_neck`` / ``_head``,
        ``variant``, ``precision``, ``device``, ``hardware``, ``mode``
        ('network' or 'end2end'), ``resolution``, ``input_shape`` (the
        network's input), ``batch_size``, ``nms_candidates_per_image``,
        ``ms_per_batch_median`` / ``_min`` / ``_max``, ``ms_per_batch_repeats``,
        ``iters_per_repeat``, ``timing_group``, ``images_per_s`` (from the
        median), ``peak_memory_mib`` (None on the CPU), ``detections_per_image``
        (end2end only, else None), ``timed_scope`` (what the timer held, in
        words) and ``status`` ('ok'; 'timeout' / 'error' with ``error`` and no
        timing; 'parity_failed' with ``error`` and its timing, out of every
        table and ratio).
    """
    device = check_settings(settings)
    if settings.threads is not None:
        torch.set_num_threads(settings.threads)
    if device.type == 'cuda':
        torch.backends.cudnn.benchmark = True  # fixed shapes: let cuDNN pick its kernels during warm-up
    hardware, done = hardware_name(device), set(done)
    skips = {(variant, precision): runtime_skip(variant, precision, device)
             for variant in settings.variants for precision in settings.precisions}
    for (variant, precision), skip in skips.items():
        if skip is not None:  # one line, and its rows left out
            log(f'{variant} {precision}: skipped: {skip}')
    cases = [case for case in _cases(settings) if skips[case[2], case[3]] is None]
    pending = [case for case in cases
               if any(_case_key(spec, form, case, hardware) not in done for spec in models for form in settings.forms)]
    total = len(pending) * len(models) * len(settings.forms)
    benches = _benches(models, settings, device) if pending else []
    rows = []
    for case in pending:
        for row in measure_setting(benches, case, settings, device):
            row['mixed_workloads'] = settings.mixed_workloads
            rows.append(row)
            if on_row is not None:
                on_row(row)
            log(format_progress(row, len(rows), total))
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
    memory = 'n/a' if row['peak_memory_mib'] is None else f'{row["peak_memory_mib"]:.1f} MiB'
    return (f'{head} {row["ms_per_batch_median"]:9.2f} ms/batch '
            f'(min {row["ms_per_batch_min"]:.2f}, max {row["ms_per_batch_max"]:.2f}, {row["iters_per_repeat"]} '
            f'calls/repeat) {row["images_per_s"]:9.1f} img/s  peak mem {memory}')
