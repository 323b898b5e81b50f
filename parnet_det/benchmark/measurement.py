"""One model's measurements: the model in its form, the state its rows share, and its part of a timed setting."""
from typing import Dict, Optional, Tuple

import numpy as np
import torch
import torch.nn as nn

from mmdet.models.dense_heads import YOLOXHead

from ..analysis import count_flops, count_parameters, foldable_norms, measure_depth
from ..deploy import RuntimeDetector, RuntimeVariant
from ..inference import DetectorEngine
from ..models import build_detector
from ..models.reparameterize import fold_conv_module_norms, switch_to_deploy
from .inputs import pack_images, synthetic_images
from .model_stats import flops_by_part, parameters_by_part
from .rows import parity_status
from .settings import BenchmarkSettings, ModelSpec, load_model_specs, min_repeat_seconds
from .timing import BlockTimer, PeakMemory, autocast, module_bytes, summarize_ms
from .variants import benchmark_calibration, build_runner, build_runtime, timed_scope, timed_step
from .workload import HeadOutputs, control_workload, head_adapter


def build_form(spec: ModelSpec, form: str, device: torch.device) -> Tuple[nn.Module, Dict[str, int]]:
    """The model of ``spec`` (:func:`~parnet_det.models.build_detector`) in its training or its folded form
    (:func:`fold_for_deploy`). The train form folds nothing.

    Returns:
        tuple[nn.Module, dict]: The model, and ``folded_blocks`` / ``folded_norms``: what was folded.
    """
    model = build_detector(spec.cfg, spec.checkpoint, device)
    if form == 'deploy':
        return model, fold_for_deploy(model)
    # A config built with deploy=True (or a deploy checkpoint) has no training form: its rows would be mislabelled.
    if any(getattr(m, 'deploy', False) for m in model.modules() if hasattr(m, 'switch_to_deploy')):
        raise ValueError(f'{spec.name}: form "train" asked for, but the model is built folded (deploy=True, or a '
                         'deploy checkpoint)')
    return model, dict(folded_blocks=0, folded_norms=0)


def fold_for_deploy(model: nn.Module) -> Dict[str, int]:
    """Fold ``model`` in place into the deploy form, every model alike: the blocks that fold themselves (ParNet's,
    ``switch_to_deploy``) and the BatchNorm of every ConvModule (the baseline's, the necks' and heads'), as the
    inference engine and the ONNX export fold. Returns ``folded_blocks`` / ``folded_norms``: what was folded."""
    folded_blocks = switch_to_deploy(model)
    return dict(folded_blocks=folded_blocks, folded_norms=fold_conv_module_norms(model.eval()))


def model_fields(spec: ModelSpec, form: str) -> dict:
    """The fields every row of a model in a form starts with (all a row of a model that failed to build has)."""
    return dict(model=spec.name, config=spec.config, checkpoint=spec.checkpoint, form=form)


def measured_sizes(config: str, flops_at: Optional[int] = None) -> dict:
    """The ``Parameters`` (deploy form), ``Parameters (training form)`` and, at ``flops_at`` px, ``FLOPs`` (2 x
    multiply-adds of the deploy form on one square image) of ``config``'s model, in the metafile's keys."""
    spec = load_model_specs(config)[0]
    cpu = torch.device('cpu')
    model, _ = build_form(spec, 'train', cpu)  # built once: counted, then folded in place and counted again
    sizes = {'Parameters (training form)': count_parameters(model)}
    fold_for_deploy(model)
    sizes['Parameters'] = count_parameters(model)
    if flops_at and hasattr(model, 'rpn_head'):
        raise ValueError(f'{config} is a two-stage detector, whose FLOPs the dense count does not cover; leave out '
                         '--flops-at')
    if flops_at:
        # A detector: backbone, neck and head (no decoding), as the benchmark counts; a classifier: the whole net.
        sizes['FLOPs'] = (flops_by_part(model, flops_at, cpu)['flops_per_image'] if hasattr(model, 'bbox_head')
                          else count_flops(model, (1, 3, flops_at, flops_at)))
        sizes['FLOPs Resolution'] = flops_at
    return sizes


class ModelBench:
    """One model in one form, built once, and the state its rows share at one input size and batch size:
    the images, the post-processing workload, the runners and the candidate counts."""

    def __init__(self, spec: ModelSpec, form: str, settings: BenchmarkSettings, device: torch.device):
        self.spec, self.form, self.settings, self.device = spec, form, settings, device
        torch.manual_seed(0)  # the same weights in every run
        self.model, folded = build_form(spec, form, device)
        smallest = (1, 3, min(settings.resolutions), min(settings.resolutions))
        self.fields = dict(model_fields(spec, form), **folded, backbone=type(self.model.backbone).__name__,
                           foldable_norms_left=len(foldable_norms(self.model, smallest)),
                           **parameters_by_part(self.model),
                           backbone_depth=measure_depth(self.model.backbone, smallest))
        self.setting = None
        self.flops: Dict[int, dict] = {}

    def _set_workload(self) -> str:
        """The same work for every model: calibrated on the very batch that is timed (see :mod:`.workload`)."""
        if self.spec.checkpoint is not None:
            return 'checkpoint'
        if self.settings.candidates == 0:
            return 'initial head'
        if head_adapter(self.model) is None:
            return f'initial head (no controlled workload for {type(self.model.bbox_head).__name__})'
        metas = [sample.metainfo for sample in self.data['data_samples']]
        candidates, detections = control_workload(self.model, self.data['inputs'], metas, self.settings.candidates)
        return f'controlled: {candidates} candidates, ~{detections} detections/img'

    def at_setting(self, resolution: int, batch_size: int) -> None:
        """Images, workload and FLOPs for this input and batch size; the previous setting's runners are dropped."""
        if (resolution, batch_size) == self.setting:
            return
        self.setting, self.runners, self.candidates = None, {}, {}
        self.images = synthetic_images(resolution, batch_size)
        with torch.inference_mode():
            self.data = self.model.data_preprocessor(pack_images(self.images), False)
        if resolution not in self.flops:
            self.flops[resolution] = flops_by_part(self.model, resolution, self.device)
        self.setting_fields = dict(workload=self._set_workload(), **self.flops[resolution])
        self.head_outputs = HeadOutputs(self.model, self.data['inputs']) if head_adapter(self.model) else None
        self.setting = (resolution, batch_size)  # last: a failure above leaves the setting to be set up again

    def runner(self, variant: str, precision: str):
        if (variant, precision) not in self.runners:
            side, batch_size = self.setting
            runtime = RuntimeVariant.parse(variant)
            if runtime is not None:
                calibration, calibration_data = (benchmark_calibration(self.spec.cfg, side)
                                                 if runtime.precision == 'int8' else ((), None))
                runner = build_runtime(self.model, self.spec.cfg, self.form, variant, side, batch_size,
                                       self.settings.threads, calibration)
                # Parity before NMS, on the very batch that is timed; export, compilation and calibration apart
                # from latency.
                runner.row_fields = dict(runner.fields(), **runner.parity(runner.pixels(self.images)[0]).fields(),
                                         **({'calibration_data': calibration_data} if calibration_data else {}))
            else:
                runner = build_runner(self.model, self.spec.cfg, self.form, variant, precision, self.device)
            if isinstance(runner, DetectorEngine):
                runner.set_input_size((side, side))
            self.runners[variant, precision] = runner
        return self.runners[variant, precision]

    def drop_runner(self, variant: str, precision: str) -> None:
        """Forget a runner interrupted mid-call: it is not to be reused."""
        if self.setting is not None:
            self.runners.pop((variant, precision), None)

    def count_candidates(self, runner, variant: str, precision: str) -> Optional[float]:
        """Mean (box, class) pairs per image that reach NMS, counted on the runner's own path (the engine's
        decoded scores in its dtype, mmdet's head under its autocast); None for a head without adapter."""
        if (variant, precision) in self.candidates:
            return self.candidates[variant, precision]
        batch_size = len(self.images)
        with torch.inference_mode():
            if isinstance(runner, RuntimeDetector):
                found = self._count_decoded(runner.network(runner.pixels(self.images)[0])[1], batch_size)
            elif isinstance(runner, DetectorEngine):
                outputs = runner.network(runner.preprocess(self.images)[0])
                if runner.decodes_boxes:  # (boxes, scores): what postprocess_dense_detections thresholds
                    found = (outputs[1].float().amax(dim=2) >= runner.test_cfg.score_thr).sum().item() / batch_size
                else:
                    found = self._count_raw(outputs, batch_size)
            else:
                with autocast(self.device, precision):
                    found = self._count_raw(self.model(self.data['inputs'], mode='tensor'), batch_size)
        self.candidates[variant, precision] = found
        return found

    def _count_decoded(self, scores: torch.Tensor, batch_size: int) -> float:
        """Candidates in a graph's dense scores: YOLOX's best class per box, else every (box, class) pair
        over the score threshold (the multi-label test)."""
        threshold = self.model.bbox_head.test_cfg.score_thr
        if isinstance(self.model.bbox_head, YOLOXHead):
            return (scores.float().amax(dim=2) >= threshold).sum().item() / batch_size
        return (scores.float() > threshold).sum().item() / batch_size

    def _count_raw(self, outputs, batch_size: int) -> Optional[float]:
        return None if self.head_outputs is None else self.head_outputs.count_candidates(outputs, batch_size)

    def prepare(self, case: tuple, row: dict) -> BlockTimer:
        """Set up ``case`` and warm its step up: the block timer to interleave. Fills ``row``'s set-up fields."""
        resolution, batch_size, variant, precision, mode = case
        self.at_setting(resolution, batch_size)
        row.update(self.setting_fields)
        runner = self.runner(variant, precision)
        row.update(getattr(runner, 'row_fields', {}))
        row['input_shape'] = (list(runner.input_size) if isinstance(runner, (DetectorEngine, RuntimeDetector))
                              else list(self.data['inputs'].shape[-2:]))
        row['nms_candidates_per_image'] = self.count_candidates(runner, variant, precision)
        row['timed_scope'] = timed_scope(runner, mode)
        step, context = timed_step(runner, mode, self.images, self.device, precision)
        timer = BlockTimer(step, self.device, context)
        # Compilation and graph capture happen on the first call: never inside a timed block.
        options = getattr(runner, 'options', None)
        warmup = max(self.settings.warmup, 1) if options is not None and (options.compile or options.cuda_graph) \
            else self.settings.warmup
        weights = module_bytes(runner.model if isinstance(runner, DetectorEngine)
                               else runner.module if isinstance(runner, RuntimeDetector) else runner)
        with PeakMemory(self.device, weights) as memory:
            timer.warm_up(warmup, self.settings.iters, min_repeat_seconds(self.settings, self.device))
        row['peak_memory_mib'] = memory.mib
        return timer

    def finish(self, row: dict, timer: BlockTimer, block_ms: list, mode: str) -> None:
        """The timing fields of ``row`` from its blocks, and (end2end) the detections of one more call.

        A runtime whose outputs failed their parity with PyTorch keeps its timing under ``status``
        'parity_failed' (:func:`~.rows.parity_status`): out of every table and ratio."""
        timing = summarize_ms(block_ms)
        detections = None
        if mode == 'end2end':
            with timer.context():
                detections = float(np.mean([len(sample.pred_instances) for sample in timer.step()]))
        row.update(timing, ms_per_batch_repeats=block_ms, iters_per_repeat=timer.iters,
                   images_per_s=len(self.images) * 1000 / timing['ms_per_batch_median'],
                   detections_per_image=detections, **parity_status(row))
