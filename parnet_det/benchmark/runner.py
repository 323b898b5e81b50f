"""The benchmark loop: every model in every form, resolution, batch size, variant, precision and mode.

Everything runs in eval mode under ``torch.inference_mode``; what each mode
times is in :mod:`.variants`, the post-processing workload in :mod:`.workload`.
"""
from contextlib import ExitStack
from itertools import groupby, product
from typing import Callable, Collection, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn

from ..analysis import measure_depth
from ..inference import DetectorEngine
from ..models import build_detector, switch_to_deploy
from ..utils.time_limit import TimeLimitExceeded, time_limit
from .inputs import pack_images, synthetic_images
from .model_stats import flops_by_part, parameters_by_part
from .settings import MODES, BenchmarkSettings, ModelSpec, check_settings
from .timing import PeakMemory, autocast, summarize_ms, time_repeats
from .variants import build_runner, timed_step
from .workload import control_yolox_workload, count_candidates

# What identifies a row: a resumed run measures only the keys it does not have yet.
ROW_KEY_FIELDS = ('model', 'form', 'variant', 'precision', 'resolution', 'batch_size', 'mode', 'with_cp')


def row_key(row: dict) -> tuple:
    return tuple(row.get(field) for field in ROW_KEY_FIELDS)


def build_form(spec: ModelSpec, form: str, device: torch.device) -> Tuple[nn.Module, int]:
    """The model of ``spec`` (:func:`~parnet_det.models.build_detector`) in its training or its folded form.

    Returns:
        tuple[nn.Module, int]: The model and the number of blocks folded.
    """
    model = build_detector(spec.cfg, spec.checkpoint, device)
    if form == 'deploy':
        return model, switch_to_deploy(model)
    # A config built with deploy=True (or a deploy checkpoint) has no training form: its rows would be mislabelled.
    if any(getattr(m, 'deploy', False) for m in model.modules() if hasattr(m, 'switch_to_deploy')):
        raise ValueError(f'{spec.name}: form "train" asked for, but the model is built folded (deploy=True, or a '
                         'deploy checkpoint)')
    return model, 0


def measure(runner, mode: str, images: List[np.ndarray], data: dict, device: torch.device, precision: str,
            settings: BenchmarkSettings) -> dict:
    """Time one mode at one setting; returns the timing, memory and (end2end) detection-count fields."""
    step, contexts = timed_step(runner, mode, images, data, device, precision)
    # Compilation and graph capture happen on the first call: never inside a timed block.
    options = getattr(runner, 'options', None)
    warmup = max(settings.warmup, 1) if options is not None and (options.compile or options.cuda_graph) \
        else settings.warmup
    with torch.inference_mode(), ExitStack() as stack, PeakMemory(device) as memory:
        for context in contexts:
            stack.enter_context(context)
        block_ms = time_repeats(step, device, warmup, settings.iters, settings.repeats)
        outputs = step()
    timing = summarize_ms(block_ms)
    return dict(timing, ms_per_batch_repeats=block_ms, images_per_s=len(images) * 1000 / timing['ms_per_batch_median'],
                peak_memory_mib=memory.mib,
                detections_per_image=float(np.mean([len(sample.pred_instances) for sample in outputs]))
                if mode == 'end2end' else None)


def _cases(settings: BenchmarkSettings) -> List[tuple]:
    """(resolution, batch_size, variant, precision, mode) in the order they are measured."""
    return list(product(settings.resolutions, settings.batch_sizes, settings.variants, settings.precisions, MODES))


def _case_key(spec: ModelSpec, form: str, case: tuple) -> tuple:
    resolution, batch_size, variant, precision, mode = case
    return row_key(dict(model=spec.name, form=form, variant=variant, precision=precision, resolution=resolution,
                        batch_size=batch_size, mode=mode))


class _ModelBench:
    """One model in one form, built once, and the state its rows share at one input size and batch size:
    the images, the post-processing workload, the runners and the candidate counts."""

    def __init__(self, spec: ModelSpec, form: str, settings: BenchmarkSettings, device: torch.device):
        self.spec, self.form, self.settings, self.device = spec, form, settings, device
        torch.manual_seed(0)  # the same weights in every run
        self.model, folded = build_form(spec, form, device)
        smallest = min(settings.resolutions)
        self.fields = dict(model=spec.name, config=spec.config, checkpoint=spec.checkpoint, form=form,
                           folded_blocks=folded, **parameters_by_part(self.model),
                           backbone_depth=measure_depth(self.model.backbone, (1, 3, smallest, smallest)))
        self.setting = None
        self.flops: Dict[int, dict] = {}

    def _set_workload(self) -> str:
        """The same work for every model: calibrated on the very batch that is timed (see :mod:`.workload`)."""
        if self.spec.checkpoint is not None:
            return 'checkpoint'
        if self.settings.candidates == 0:
            return 'initial head'
        candidates, detections = control_yolox_workload(self.model, self.data['inputs'], self.settings.candidates)
        return f'controlled: {candidates} candidates, ~{detections} detections/img'

    def at_setting(self, resolution: int, batch_size: int) -> None:
        """Images, workload and FLOPs for this input and batch size; the previous setting's runners are dropped."""
        if (resolution, batch_size) == self.setting:
            return
        self.setting, self.runners, self.candidates = (resolution, batch_size), {}, {}
        self.images = synthetic_images(resolution, batch_size)
        with torch.inference_mode():
            self.data = self.model.data_preprocessor(pack_images(self.images), False)
        if resolution not in self.flops:
            self.flops[resolution] = flops_by_part(self.model, resolution, self.device)
        self.setting_fields = dict(workload=self._set_workload(), **self.flops[resolution])

    def runner(self, variant: str, precision: str):
        if (variant, precision) not in self.runners:
            runner = build_runner(self.model, self.spec.cfg, self.form, variant, precision, self.device)
            if isinstance(runner, DetectorEngine):
                side = self.setting[0]
                runner.set_input_size((side, side))
            self.runners[variant, precision] = runner
        return self.runners[variant, precision]

    def count_candidates(self, precision: str) -> Optional[float]:
        if precision not in self.candidates:
            with autocast(self.device, precision):
                self.candidates[precision] = count_candidates(self.model, self.data['inputs'])
        return self.candidates[precision]

    def measure_case(self, case: tuple) -> dict:
        resolution, batch_size, variant, precision, mode = case
        self.at_setting(resolution, batch_size)
        row = dict(self.fields, **self.setting_fields, variant=variant, precision=precision,
                   device=str(self.device), mode=mode, resolution=resolution, batch_size=batch_size)
        try:
            with time_limit(self.settings.row_time_limit_s):
                runner = self.runner(variant, precision)
                row['input_shape'] = (list(runner.input_size) if isinstance(runner, DetectorEngine)
                                      else list(self.data['inputs'].shape[-2:]))
                row['nms_candidates_per_image'] = self.count_candidates(precision)
                row.update(measure(runner, mode, self.images, self.data, self.device, precision, self.settings),
                           status='ok')
        except TimeLimitExceeded as timeout:
            self.runners.pop((variant, precision), None)  # interrupted mid-call: not to be reused
            row.update(status='timeout', error=str(timeout))
        return row


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
               if _case_key(spec, form, case) not in done]
    rows = []
    for _, group in groupby(pending, key=lambda item: (id(item[0]), item[1])):
        group = list(group)
        bench = _ModelBench(group[0][0], group[0][1], settings, device)
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
