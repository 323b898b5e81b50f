"""Training throughput: one optimizer step (data pre-processing, forward, loss, backward, step) of a
detector on a batch already in memory, as ``mmengine``'s training loop runs it.

The step is ``model.train_step(batch, optim_wrapper)`` with the config's own
optimizer (``optim_wrapper``), under mmengine's ``AmpOptimWrapper`` for fp16 /
bf16 (what ``tools/train.py --amp`` uses), at a fixed input size: the
recipe's multi-scale batch augment is switched off so that every step has
the same shape. Data loading, EMA and logging hooks are not part of it.
"""
import copy
import logging
from dataclasses import dataclass
from typing import Callable, Collection, List, Optional, Sequence

import numpy as np
import torch
from mmengine.config import Config
from mmengine.logging import MMLogger
from mmengine.optim import build_optim_wrapper
from mmengine.structures import InstanceData

from mmdet.structures import DetDataSample
from mmdet.structures.bbox import HorizontalBoxes

from ..inference.fast_paths import check_precision
from ..models import build_detector
from ..utils.amp import use_fp32
from .inputs import synthetic_images
from .model_stats import parameters_by_part
from .rows import TRAIN_MODE, row_key
from .runner import time_together
from .settings import ModelSpec
from .tables import memory_cell
from .timing import BlockTimer, PeakMemory, hardware_name, module_bytes, resolve_device, summarize_ms


@dataclass
class TrainSettings:
    """What the training mode measures.

    Args:
        resolution (int): Square input side in pixels (the recipe's 640 on a GPU).
        batch_size (int, optional): Images per step; None: the config's ``train_dataloader.batch_size``
            (the recipe's per-GPU batch).
        precisions (Sequence[str]): 'fp32' (plain ``OptimWrapper``) and/or 'fp16' / 'bf16' (AMP).
        with_cp (Sequence[bool]): Gradient checkpointing of the backbone off and/or on.
        device (str): 'cpu', 'cuda' or 'cuda:N'.
        warmup (int): Untimed steps first.
        iters (int): Steps per timed repeat, at least.
        repeats (int): Timed repeats, the models' alternating.
        min_repeat_s (float): Seconds a timed repeat lasts at least (0: exactly ``iters`` steps).
        boxes_per_image (int): Random ground-truth boxes per image.
        row_time_limit_s (float, optional): As in :class:`~.settings.BenchmarkSettings`.
    """
    resolution: int = 640
    batch_size: Optional[int] = None
    precisions: Sequence[str] = ('fp16', )
    with_cp: Sequence[bool] = (False, True)
    device: str = 'cuda'
    warmup: int = 3
    iters: int = 5
    repeats: int = 3
    min_repeat_s: float = 0.0
    boxes_per_image: int = 8
    row_time_limit_s: Optional[float] = None


def synthetic_training_batch(resolution: int, batch_size: int, num_classes: int, boxes_per_image: int,
                             seed: int = 0) -> dict:
    """Random images with random boxes and labels, packed as mmdet's ``PackDetInputs`` packs a training batch."""
    rng = np.random.default_rng(seed)
    inputs, data_samples = [], []
    for image in synthetic_images(resolution, batch_size, seed):
        corners = rng.uniform(0, resolution, (boxes_per_image, 2, 2))
        boxes = np.concatenate([corners.min(axis=1), corners.max(axis=1) + 8], axis=1).clip(0, resolution)
        sample = DetDataSample(metainfo=dict(img_shape=(resolution, resolution), ori_shape=(resolution, resolution),
                                             scale_factor=(1.0, 1.0), batch_input_shape=(resolution, resolution)))
        sample.gt_instances = InstanceData(bboxes=HorizontalBoxes(torch.from_numpy(boxes).float()),
                                           labels=torch.from_numpy(rng.integers(0, num_classes, boxes_per_image)))
        inputs.append(torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))))
        data_samples.append(sample)
    return dict(inputs=inputs, data_samples=data_samples)


def training_config(cfg: Config, precision: str, with_cp: bool) -> Config:
    """A copy of ``cfg`` for the step: AMP as ``tools/train.py --amp`` sets it, ``with_cp`` on the backbone,
    no multi-scale batch augment, and one optimizer step per batch (mmengine's wrapper: the nominal batch's
    accumulation of the YOLOv4-CSP recipe needs its warm-up hook and would time several batches per step)."""
    cfg = copy.deepcopy(cfg)
    cfg.model.backbone.with_cp = with_cp
    cfg.model.data_preprocessor.batch_augments = None
    cfg.optim_wrapper.pop('nominal_batch_size', None)
    cfg.optim_wrapper.type = 'OptimWrapper'
    if precision == 'fp32':
        use_fp32(cfg)  # the AMP-only keys out (the YOLOv4-CSP configs train with AMP by default)
    else:
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.loss_scale = 'dynamic'
        cfg.optim_wrapper.dtype = {'fp16': 'float16', 'bf16': 'bfloat16'}[precision]
    return cfg


class TrainStep:
    """One model's optimizer step on its batch, built for timing (the model, its optimizer and the batch)."""

    def __init__(self, spec: ModelSpec, settings: TrainSettings, precision: str, with_cp: bool,
                 device: torch.device):
        cfg = training_config(spec.cfg, precision, with_cp)
        torch.manual_seed(0)
        self.model = build_detector(cfg, device=device).train()
        logger = MMLogger.get_current_instance()
        level = logger.level
        logger.setLevel(logging.WARNING)  # the optimizer's builder logs one line per parameter
        try:
            self.optim_wrapper = build_optim_wrapper(self.model, cfg.optim_wrapper)
        finally:
            logger.setLevel(level)
        self.batch_size = settings.batch_size or cfg.train_dataloader.batch_size
        self.batch = synthetic_training_batch(settings.resolution, self.batch_size, self.model.bbox_head.num_classes,
                                              settings.boxes_per_image)
        self.settings, self.device = settings, device

    def __call__(self):
        return self.model.train_step(self.batch, self.optim_wrapper)

    def prepare(self, row: dict) -> BlockTimer:
        """Warmed up (the optimizer's state allocated: counted in the peak memory) and ready to time."""
        timer = BlockTimer(self, self.device)
        with PeakMemory(self.device, module_bytes(self.model)) as memory:
            timer.warm_up(self.settings.warmup, self.settings.iters, self.settings.min_repeat_s)
        row.update(parameters_by_part(self.model), peak_memory_mib=memory.mib)
        return timer

    def finish(self, row: dict, block_ms: list) -> None:
        timing = summarize_ms(block_ms)
        row.update(timing, ms_per_batch_repeats=block_ms,
                   images_per_s=self.batch_size * 1000 / timing['ms_per_batch_median'], status='ok')


def check_train_settings(settings: TrainSettings) -> torch.device:
    """Refuse a device or precision the training step cannot run on; returns the device."""
    device = resolve_device(settings.device)
    for precision in settings.precisions:
        check_precision(device, precision)
    if device.type == 'cpu' and any(precision != 'fp32' for precision in settings.precisions):
        raise ValueError("training mode: mmengine's AmpOptimWrapper needs a CUDA device; use --precision fp32 on "
                         'the CPU')
    return device


def run_training_benchmark(models: Sequence[ModelSpec], settings: TrainSettings,
                           log: Callable[[str], None] = print, on_row: Optional[Callable[[dict], None]] = None,
                           done: Collection[tuple] = ()) -> List[dict]:
    """Images/s and peak memory of one training step per model, precision and ``with_cp``.

    Rows have ``mode='train_step'``, ``form='train'``, ``variant='mmdet'``,
    ``with_cp``, the timing fields of :func:`~.runner.run_benchmark`'s rows,
    ``params`` by part and ``status``. Per precision and ``with_cp`` the
    models' steps alternate (:func:`~.runner.time_together`); one whose
    rows' :func:`~.runner.row_key` are all in ``done`` is skipped, one with
    some missing is measured again for every model.
    """
    device = check_train_settings(settings)
    if device.type == 'cuda':
        torch.backends.cudnn.benchmark = True
    rows = []
    for precision in settings.precisions:
        for with_cp in settings.with_cp:
            group = []
            for spec in models:
                row = dict(model=spec.name, config=spec.config, checkpoint=None, form='train', variant='mmdet',
                           precision=precision, device=str(device), hardware=hardware_name(device), mode=TRAIN_MODE,
                           resolution=settings.resolution, with_cp=with_cp,
                           batch_size=settings.batch_size or spec.cfg.train_dataloader.batch_size)
                group.append(row)
            if all(row_key(row) in done for row in group):
                continue
            steps = {}

            def prepare(index: int) -> BlockTimer:
                steps[index] = TrainStep(models[index], settings, precision, with_cp, device)
                return steps[index].prepare(group[index])

            # The models' steps alternate, as the inference rows' (see runner.time_together).
            time_together(group, prepare, lambda index, timer, blocks: steps[index].finish(group[index], blocks),
                          settings.repeats, settings.row_time_limit_s, forget=lambda index: steps.pop(index, None))
            steps.clear()
            for row in group:
                rows.append(row)
                if on_row is not None:
                    on_row(row)
                log(f'[train {len(rows)}] {row["model"]} {precision} b{row["batch_size"]} {settings.resolution}px '
                    f'with_cp={with_cp}: ' + (f'{row["images_per_s"]:.1f} img/s, peak mem (MiB) {memory_cell(row)}'
                                              if row['status'] == 'ok' else row['error']))
            if device.type == 'cuda':
                torch.cuda.empty_cache()
    return rows
