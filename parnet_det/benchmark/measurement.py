"""One model's measurements: the model in its form, the state its rows share, one timed measurement."""
from contextlib import ExitStack
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch
import torch.nn as nn

from mmdet.models.dense_heads import YOLOXHead

from ..analysis import measure_depth
from ..inference import DetectorEngine
from ..models import build_detector, switch_to_deploy
from ..utils.time_limit import time_limit
from .inputs import pack_images, synthetic_images
from .model_stats import flops_by_part, parameters_by_part
from .rows import failed_row_fields
from .settings import BenchmarkSettings, ModelSpec
from .timing import PeakMemory, autocast, hardware_name, summarize_ms, time_repeats
from .variants import build_runner, timed_step
from .workload import control_yolox_workload, count_candidates


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


class ModelBench:
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
        if not isinstance(getattr(self.model, 'bbox_head', None), YOLOXHead):
            return 'initial head (the controlled workload is defined for YOLOX heads)'
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
                   device=str(self.device), hardware=hardware_name(self.device), mode=mode, resolution=resolution,
                   batch_size=batch_size)
        try:
            with time_limit(self.settings.row_time_limit_s):
                runner = self.runner(variant, precision)
                row['input_shape'] = (list(runner.input_size) if isinstance(runner, DetectorEngine)
                                      else list(self.data['inputs'].shape[-2:]))
                row['nms_candidates_per_image'] = self.count_candidates(precision)
                row.update(measure(runner, mode, self.images, self.data, self.device, precision, self.settings),
                           status='ok')
        except Exception as failure:  # noqa: BLE001 (kept as a row: one row's failure must not end the run)
            self.runners.pop((variant, precision), None)  # interrupted mid-call: not to be reused
            row.update(failed_row_fields(failure))
        return row
