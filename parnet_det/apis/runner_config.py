"""Turn the command-line arguments of tools/train.py and tools/test.py into a runner config.

The tools only parse arguments; everything here is importable and testable.
The arguments and their meaning are MMDetection's (tools/train.py, tools/test.py).
"""
import logging
import os
import os.path as osp
from typing import Optional, Sequence

import torch
from mmengine.config import Config
from mmengine.logging import print_log

from ..utils.amp import use_amp, use_amp_where_available
from ..utils.checkpoint import CheckpointError, find_resume_checkpoint, load_checkpoint_file
from ..utils.config import dataset_image_dir, dataset_pipeline, leaf_datasets, pipeline_step
from ..utils.fileio import (
    OutputIsInputError,
    check_apart_from_inputs,
    check_new_or_empty_dir,
    remove_partial_files,
    strict_json,
)
from .run_checks import add_training_checks, check_loaded_checkpoints, check_resume_fits, launcher_rank


def default_work_dir(config_path: str) -> str:
    return osp.join('./work_dirs', osp.splitext(osp.basename(config_path))[0])


def set_launcher(cfg: Config, launcher: str) -> Config:
    """Set the launcher; without a usable GPU, distribute over CPU processes.

    mmengine's torchrun path assumes one GPU per process: it calls
    ``torch.cuda.set_device``, its runtime defaults to NCCL and it wraps the
    model in DDP with ``device_ids=[LOCAL_RANK]``. On CPUs the process group
    is started here with gloo (mmengine then uses it as it is), and DDP gets
    ``device_ids=None``. A config's ``sync_bn`` is dropped there (one log line):
    torch's SyncBatchNorm refuses CPU tensors in training once a process group
    exists, so each process normalises over its own batch.
    """
    cfg.launcher = launcher
    if launcher == 'none' or torch.cuda.is_available():
        return cfg
    cfg.setdefault('env_cfg', {}).setdefault('dist_cfg', {})['backend'] = 'gloo'
    if cfg.pop('sync_bn', None) is not None:
        print_log('no GPU: sync_bn dropped, SyncBatchNorm needs CUDA tensors (each process normalises its own '
                  'batch)', logger='current', level=logging.WARNING)
    if cfg.get('model_wrapper_cfg') is None:
        cfg.model_wrapper_cfg = dict(type='MMDistributedDataParallel', device_ids=None, broadcast_buffers=False,
                                     find_unused_parameters=cfg.get('find_unused_parameters', False))
    if launcher == 'pytorch' and not torch.distributed.is_initialized():
        torch.distributed.init_process_group(backend='gloo')
    return cfg


def setup_train_config(cfg: Config, config_path: str, work_dir: Optional[str] = None, amp: bool = False,
                       auto_scale_lr: bool = False, resume: Optional[str] = None,
                       launcher: str = 'none') -> Config:
    """Apply tools/train.py's options to ``cfg`` (as MMDetection's own train tool does).

    Resuming looks into (and cleans) ``cfg.work_dir``: call it while holding the
    work dir (:func:`~parnet_det.apis.exclusive_work_dir`, after :func:`set_work_dir`).
    Adds the divergence check and, when resuming, the check that the checkpoint
    fits the model (:func:`~parnet_det.apis.run_checks.add_training_checks`); the
    resumed weights are checked here already, before the runner writes into the
    work dir (:func:`~parnet_det.apis.run_checks.check_resume_fits`).
    AMP (``--amp`` or the config's ``AmpOptimWrapper``) falls back to fp32 where
    there is no accelerator (:func:`use_amp_where_available`).
    """
    set_launcher(cfg, launcher)
    set_work_dir(cfg, config_path, work_dir)
    if amp:
        use_amp(cfg)
    use_amp_where_available(cfg)
    if auto_scale_lr:
        if not cfg.get('auto_scale_lr') or 'base_batch_size' not in cfg.auto_scale_lr:
            raise KeyError('--auto-scale-lr needs auto_scale_lr=dict(base_batch_size=...) in the config')
        cfg.auto_scale_lr.enable = True
    use_crash_safe_checkpoints(cfg)
    use_resumable_loop(cfg)
    # --resume alone: the newest loadable checkpoint of work_dir; --resume PATH: that checkpoint.
    if resume == 'auto':
        # Only the process that holds the work dir (rank 0) removes files there.
        cfg.load_from = resume_checkpoint(cfg.work_dir, remove_partial=launcher_rank(launcher) == 0)
        cfg.resume = cfg.load_from is not None
    elif resume is not None:
        load_checkpoint_file(resume, map_location='cpu')  # a clear error now, not a traceback later
        cfg.resume, cfg.load_from = True, resume
    check_resume_fits(cfg)
    check_loaded_checkpoints(cfg)
    return add_training_checks(cfg)


def set_work_dir(cfg: Config, config_path: str, work_dir: Optional[str] = None) -> Config:
    """``cfg.work_dir`` by priority: ``work_dir`` (the command line) > the config's > ./work_dirs/<config name>."""
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = default_work_dir(config_path)
    return cfg


def use_crash_safe_checkpoints(cfg: Config) -> Config:
    """Save checkpoints with :class:`~parnet_det.engine.CrashSafeCheckpointHook` where a config names
    mmengine's ``CheckpointHook`` (mmdet's default runtime does)."""
    hook = (cfg.get('default_hooks') or {}).get('checkpoint')
    if hook is not None and hook.get('type') in ('CheckpointHook', 'mmengine.CheckpointHook'):
        hook.type = 'CrashSafeCheckpointHook'
    return cfg


def use_resumable_loop(cfg: Config) -> Config:
    """Train an epoch-based config with :class:`~parnet_det.engine.ResumableEpochBasedTrainLoop` (a mid-epoch
    checkpoint resumes at its iteration, not at its epoch's start as mmengine's loop does)."""
    train_cfg = cfg.get('train_cfg')
    if not train_cfg:
        return cfg
    if train_cfg.get('by_epoch') is True and 'type' not in train_cfg:  # mmengine's other way to name the loop
        train_cfg.pop('by_epoch')
        train_cfg.type = 'EpochBasedTrainLoop'
    if train_cfg.get('type') in ('EpochBasedTrainLoop', 'mmengine.EpochBasedTrainLoop'):
        train_cfg.type = 'ResumableEpochBasedTrainLoop'
    return cfg


def resume_checkpoint(work_dir: str, remove_partial: bool = True) -> Optional[str]:
    """The checkpoint ``--resume`` (without a file) continues from; None if ``work_dir`` has none.

    mmengine takes whatever ``last_checkpoint`` names and fails on a truncated,
    empty or moved file; here each skipped candidate is reported and the
    newest loadable checkpoint is used instead. Temporary files of saves that
    were killed midway are removed if ``remove_partial`` (only by the process
    holding the work dir: :func:`~parnet_det.apis.exclusive_work_dir`).
    """
    if not osp.isdir(work_dir):
        print_log(f'--resume: {work_dir} does not exist yet, training starts from scratch', logger='current')
        return None
    for name in (remove_partial_files(work_dir) if remove_partial else []):
        print_log(f'--resume: removed {osp.join(work_dir, name)}, left by an interrupted save', logger='current')
    path, skipped = find_resume_checkpoint(work_dir)
    for reason in skipped:
        print_log(f'--resume: skipped {reason}', logger='current', level=logging.WARNING)
    if path is None and skipped:
        raise CheckpointError(f'--resume: no loadable checkpoint in {work_dir} (skipped: {"; ".join(skipped)})')
    if path is None:
        print_log(f'--resume: no checkpoint in {work_dir}, training starts from scratch', logger='current')
    else:
        print_log(f'--resume: resuming from {path}', logger='current')
    return path


def check_show_dir(cfg: Config, show_dir: str, inputs: Sequence[str] = ()) -> None:
    """Refuse a ``tools/test.py --show-dir`` where drawing could replace a file, before anything runs.

    mmdet's visualization hook writes ``<show_dir>/<image file name>`` over
    whatever is there, in ``WORK_DIR/<timestamp>/<show_dir>`` (new each run)
    unless ``show_dir`` is absolute. A relative one must stay inside the work
    dir (no ``..`` out of it); an absolute one, asked for outside it, must be a
    new or empty folder. Either way the folder drawn into, resolved after
    ``..`` and symlinks, is neither the test dataset's image folder nor any of
    ``inputs`` nor inside one: the work dir itself may be an input folder.
    Raises ``OSError`` or :class:`~parnet_det.utils.fileio.OutputIsInputError`.
    """
    inputs = [*(dataset_image_dir(dataset) for dataset in leaf_datasets(cfg.test_dataloader.dataset)), *inputs]
    if osp.isabs(show_dir):
        check_new_or_empty_dir(show_dir, '--show-dir', inputs)
        return
    work_dir = osp.abspath(cfg.work_dir)
    # mmdet puts the run's timestamp folder in between: one level a '..' may climb and stay inside.
    drawn_to = osp.normpath(osp.join(work_dir, 'TIMESTAMP', show_dir))
    if osp.commonpath([drawn_to, work_dir]) != work_dir:
        raise OutputIsInputError(f'--show-dir {show_dir} leads out of the work dir (the drawings go to '
                                 f'{cfg.work_dir}/<timestamp>/{show_dir}); give a folder name, or an absolute path '
                                 'to a new or empty folder to draw elsewhere')
    check_apart_from_inputs(drawn_to, inputs)


def get_test_resolution(cfg: Config) -> Optional[Sequence[int]]:
    """The (H, W) the test pipeline resizes and pads to, read off its Resize step."""
    resize = pipeline_step(dataset_pipeline(cfg.test_dataloader.dataset), 'Resize')
    if resize is None:
        return None
    width, height = resize['scale']
    return [height, width]


def record_ap_results(path: str, config_path: str, checkpoint: str, cfg: Config, metrics: dict, **flags) -> str:
    """Append one evaluation (model, resolution, AP metrics) to a JSON-lines file for tools/report.py."""
    record = dict(model=osp.splitext(osp.basename(config_path))[0], config=config_path, checkpoint=checkpoint,
                  resolution=get_test_resolution(cfg), metrics={k: float(v) for k, v in metrics.items()}, **flags)
    os.makedirs(osp.dirname(path) or '.', exist_ok=True)
    with open(path, 'a') as f:
        f.write(strict_json(record) + '\n')
    return path


def use_official_batches(cfg: Config, batch_size: int, launcher: str = 'none') -> Config:
    """``tools/test.py --official-batches N``: Scaled-YOLOv4's test batches and box arithmetic.

    The test images sorted by aspect ratio, ``N`` per batch, each letterboxed to its batch's shape
    (:class:`~parnet_det.datasets.OfficialBatchShapes`, with the ``RectLetterbox`` step's size, stride and
    pad), in that order on one process, and the official ``scale_coords``
    (``test_cfg.unletterbox='official'``). The published val2017 AP of YOLOv4-CSP came from ``N = 8``.
    """
    if launcher != 'none':
        raise ValueError('--official-batches runs on one process: the batches are consecutive images of the sorted '
                         'order, which a distributed sampler would interleave; drop the launcher')
    dataset = cfg.test_dataloader.dataset
    letterbox = pipeline_step(dataset_pipeline(dataset), 'RectLetterbox')
    if letterbox is None or dataset.get('type') != 'CheckedCocoDataset':
        raise ValueError('--official-batches needs a CheckedCocoDataset test set with a RectLetterbox step in its '
                         'pipeline (the YOLOv4-CSP configs: configs/yolov4_csp_*.py)')
    dataset.batch_shapes_cfg = dict(type='OfficialBatchShapes', batch_size=batch_size,
                                    img_size=letterbox.get('img_size', 640), stride=letterbox.get('stride', 64),
                                    pad=letterbox.get('pad', 0.5))
    cfg.test_dataloader.batch_size = batch_size
    cfg.test_dataloader.sampler = dict(type='DefaultSampler', shuffle=False)
    cfg.model.test_cfg.unletterbox = 'official'
    return cfg


def set_test_resolution(cfg: Config, resolution: Sequence[int]) -> Config:
    """Set the test pipeline's input size: resize to fit and pad to ``(H, W)``.

    Handles the two resize styles of mmdet test pipelines (``scale`` with
    ``keep_ratio``, as YOLOX's) and the ``Pad`` step after it, for the test
    dataloader and, if present, the validation one. A ``RectLetterbox`` step
    (YOLOv4-CSP's official test input) letterboxes to one long side: it takes
    a square resolution only.
    """
    height, width = (resolution[0], resolution[0]) if len(resolution) == 1 else resolution[:2]
    for loader_key in ('test_dataloader', 'val_dataloader'):
        loader = cfg.get(loader_key)
        if not loader:
            continue
        pipeline = dataset_pipeline(loader.dataset)
        resized = False
        for step in pipeline:
            if step['type'] == 'Resize':
                step['scale'] = (width, height)  # mmcv's Resize takes (w, h)
                resized = True
            elif step['type'] == 'RectLetterbox':
                if height != width:
                    raise ValueError(f'{loader_key}: the RectLetterbox step resizes the long side to one size; '
                                     f'give one resolution (e.g. --resolution {max(height, width)}), '
                                     f'not {height}x{width}')
                step['img_size'] = height
            elif step['type'] == 'Pad' and not (step.get('pad_to_square') and height == width):
                step.pop('size_divisor', None)
                step['pad_to_square'] = False
                step['size'] = (width, height)
        if not resized:
            raise KeyError(f'{loader_key}: no Resize step in the pipeline to set the resolution on')
    return cfg
