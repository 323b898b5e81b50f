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

from ..models import build_detector
from ..utils.time_limit import time_limit
from .inputs import synthetic_images
from .model_stats import parameters_by_part
from .rows import TRAIN_MODE, failed_row_fields, row_key
from .settings import ModelSpec
from .tables import memory_cell
from .timing import PeakMemory, check_precisions, hardware_name, resolve_device, summarize_ms, time_repeats


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
        iters (int): Steps per timed repeat.
        repeats (int): Timed repeats.
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
    no multi-scale batch augment."""
    cfg = copy.deepcopy(cfg)
    cfg.model.backbone.with_cp = with_cp
    cfg.model.data_preprocessor.batch_augments = None
    if precision != 'fp32':
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.loss_scale = 'dynamic'
        cfg.optim_wrapper.dtype = {'fp16': 'float16', 'bf16': 'bfloat16'}[precision]
    return cfg


def _measure_step(spec: ModelSpec, settings: TrainSettings, precision: str, with_cp: bool,
                  device: torch.device) -> dict:
    cfg = training_config(spec.cfg, precision, with_cp)
    torch.manual_seed(0)
    model = build_detector(cfg, device=device).train()
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.WARNING)  # the optimizer's builder logs one line per parameter
    try:
        optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    finally:
        logger.setLevel(level)
    batch_size = settings.batch_size or cfg.train_dataloader.batch_size
    batch = synthetic_training_batch(settings.resolution, batch_size, model.bbox_head.num_classes,
                                     settings.boxes_per_image)
    # The model lives only in this step: every byte over the start is its own (weights and optimizer state).
    with PeakMemory(device) as memory:
        block_ms = time_repeats(lambda: model.train_step(batch, optim_wrapper), device, settings.warmup,
                                settings.iters, settings.repeats)
    timing = summarize_ms(block_ms)
    return dict(parameters_by_part(model), batch_size=batch_size, **timing, ms_per_batch_repeats=block_ms,
                images_per_s=batch_size * 1000 / timing['ms_per_batch_median'], peak_memory_mib=memory.mib)


def check_train_settings(settings: TrainSettings) -> torch.device:
    """Refuse a device or precision the training step cannot run on; returns the device."""
    device = resolve_device(settings.device)
    check_precisions(device, settings.precisions)
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
    ``params`` by part and ``status``; rows whose :func:`~.runner.row_key` is
    in ``done`` are skipped.
    """
    device = check_train_settings(settings)
    if device.type == 'cuda':
        torch.backends.cudnn.benchmark = True
    rows = []
    for spec in models:
        for precision in settings.precisions:
            for with_cp in settings.with_cp:
                row = dict(model=spec.name, config=spec.config, checkpoint=None, form='train', variant='mmdet',
                           precision=precision, device=str(device), hardware=hardware_name(device), mode=TRAIN_MODE,
                           resolution=settings.resolution, batch_size=settings.batch_size, with_cp=with_cp)
                if settings.batch_size is None:
                    row['batch_size'] = spec.cfg.train_dataloader.batch_size
                if row_key(row) in done:
                    continue
                try:
                    with time_limit(settings.row_time_limit_s):
                        row.update(_measure_step(spec, settings, precision, with_cp, device), status='ok')
                except Exception as failure:  # noqa: BLE001 (kept as a row: one row's failure must not end the run)
                    row.update(failed_row_fields(failure))
                rows.append(row)
                if on_row is not None:
                    on_row(row)
                log(f'[train {len(rows)}] {spec.name} {precision} b{row["batch_size"]} {settings.resolution}px '
                    f'with_cp={with_cp}: ' + (f'{row["images_per_s"]:.1f} img/s, peak mem (MiB) {memory_cell(row)}'
                                              if row['status'] == 'ok' else row['error']))
                if device.type == 'cuda':
                    torch.cuda.empty_cache()
    return rows
