"""What is timed for a detector, and the loop over models, forms, variants, resolutions, batch sizes
and precisions.

A *variant* says how the detector runs:

- ``mmdet``: the detector as mmdet runs it (``model._forward`` /
  ``model.test_step``); reduced precisions under ``torch.autocast``, as mmdet's
  ``--amp``. The head's outputs are cast back to fp32 before decoding, so that
  decoding and NMS run in fp32 (mmcv's NMS kernels take no bf16, its CPU
  kernel no fp16 either).
- anything else: :class:`~parnet_det.inference.DetectorEngine` with the fast
  paths named, joined with '+' (``eager`` for none; ``streams``,
  ``channels_last``, ``compile``, ``cuda_graph``); reduced precisions cast the
  network's weights and input (decoding and NMS stay fp32).

Two measurements per setting:

- ``network``: on a batch that was pre-processed beforehand and already lies
  on the device: ``model._forward`` (backbone, neck, head; no decoding) for
  ``mmdet``, the engine's network (with batched box decoding for YOLOX heads,
  before NMS) for the engine variants.
- ``end2end``: what serving a batch of decoded images costs, from uint8 HWC
  images in host memory to boxes in original pixels: for ``mmdet``, packing as
  ``PackDetInputs`` does and ``model.test_step`` (data preprocessor, network,
  decoding and NMS per image); for the engine, copy to the device, resize and
  letterbox there, normalisation, the network, and batched NMS.

Everything runs in eval mode under ``torch.inference_mode``.
"""
import copy
import os.path as osp
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import load_checkpoint

from mmdet.registry import MODELS
from mmdet.structures import DetDataSample

from ..analysis import count_flops, count_parameters, measure_depth
from ..apis import load_config
from ..deploy import switch_to_deploy
from ..inference import DetectorEngine, InferenceOptions
from .timing import PeakMemory, autocast, check_precisions, resolve_device, summarize_ms, time_repeats

FORMS = ('deploy', 'train')
MODES = ('network', 'end2end')
MMDET_VARIANT = 'mmdet'


@dataclass
class ModelSpec:
    """A model to benchmark.

    Args:
        name (str): Its name in the reports (the config's file name).
        config (str): Path of its config.
        cfg (Config): The loaded config, ``--cfg-options`` applied.
        checkpoint (str, optional): Weights to load before folding.
    """
    name: str
    config: str
    cfg: Config
    checkpoint: Optional[str] = None


@dataclass
class BenchmarkSettings:
    """What to measure, and how often.

    Args:
        resolutions (Sequence[int]): Square input sides in pixels.
        batch_sizes (Sequence[int]): Images per batch.
        precisions (Sequence[str]): Names from :data:`~.timing.PRECISIONS`.
        forms (Sequence[str]): 'deploy' (ParNet branches folded) and/or 'train'.
        variants (Sequence[str]): 'mmdet' and/or engine fast-path combinations
            (see the module docstring); the first is the reference of the
            speed-up column.
        device (str): 'cpu', 'cuda' or 'cuda:N'.
        warmup (int): Untimed iterations before each measurement.
        iters (int): Iterations per timed repeat.
        repeats (int): Timed repeats; the report gives their median, min and max.
        threads (int, optional): CPU threads of torch's intra-op pool; None keeps torch's default.
            On a machine shared with other work, fewer threads than cores avoid the stalls of
            threads waiting for a busy core.
    """
    resolutions: Sequence[int] = (320, 416, 512, 640)
    batch_sizes: Sequence[int] = (1, )
    precisions: Sequence[str] = ('fp32', )
    forms: Sequence[str] = ('deploy', )
    variants: Sequence[str] = (MMDET_VARIANT, )
    device: str = 'cpu'
    warmup: int = 10
    iters: int = 30
    repeats: int = 5
    threads: Optional[int] = None


def load_model_specs(config: str, checkpoint: Optional[str] = None, baselines: Sequence[str] = (),
                     cfg_options: Optional[dict] = None) -> List[ModelSpec]:
    """Read the model's config and every baseline's, before anything is measured.

    Args:
        config (str): The model's config.
        checkpoint (str, optional): The model's weights; baselines keep their initialisation.
        baselines (Sequence[str]): Baseline configs; the first is the reference of the FPS ratios.
        cfg_options (dict, optional): ``--cfg-options``, applied to every config alike.

    Returns:
        list[ModelSpec]: The model first, then the baselines in order.
    """
    if checkpoint is not None and not osp.isfile(checkpoint):
        raise FileNotFoundError(f'checkpoint {checkpoint} does not exist')
    specs = []
    for path, weights in [(config, checkpoint)] + [(baseline, None) for baseline in baselines]:
        name = osp.splitext(osp.basename(path))[0]
        specs.append(ModelSpec(name=name, config=path, cfg=load_config(path, cfg_options), checkpoint=weights))
    return specs


def build_detector(cfg: Config, form: str, device: torch.device, checkpoint: Optional[str] = None
                   ) -> Tuple[nn.Module, int]:
    """Build ``cfg.model`` in eval mode on ``device``, in its training or its folded form.

    Args:
        cfg (Config): The detector's config.
        form (str): 'train' (as built) or 'deploy' (:func:`~parnet_det.deploy.switch_to_deploy`
            applied; a model without foldable blocks is unchanged).
        device (torch.device): Where the model runs.
        checkpoint (str, optional): Loaded before folding.

    Returns:
        tuple[nn.Module, int]: The model and the number of blocks folded.
    """
    if form not in FORMS:
        raise ValueError(f'unknown form {form!r}; choose from {", ".join(FORMS)}')
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    model = MODELS.build(cfg.model)
    if checkpoint is not None:
        load_checkpoint(model, checkpoint, map_location='cpu')
    model.eval()
    if form == 'deploy':
        folded = switch_to_deploy(model)
    else:
        folded = 0
        # A config built with deploy=True has no training form: its rows would be mislabelled.
        if any(getattr(m, 'deploy', False) for m in model.modules() if hasattr(m, 'switch_to_deploy')):
            raise ValueError('form "train" asked for, but the config builds folded (deploy=True) blocks')
    return model.to(device), folded


def synthetic_images(resolution: int, batch_size: int, seed: int = 0) -> List[np.ndarray]:
    """Random uint8 HWC images (as an image decoder returns them), the same for every model."""
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (resolution, resolution, 3), dtype=np.uint8) for _ in range(batch_size)]


def pack_images(images: Sequence[np.ndarray]) -> dict:
    """What mmdet's ``PackDetInputs`` makes of decoded images: CHW uint8 tensors and their metadata."""
    inputs = [torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))) for image in images]
    data_samples = [
        DetDataSample(metainfo=dict(img_shape=image.shape[:2], ori_shape=image.shape[:2], scale_factor=(1.0, 1.0)))
        for image in images
    ]
    return dict(inputs=inputs, data_samples=data_samples)


def network_step(model: nn.Module, data: dict) -> Callable[[], tuple]:
    """One network-only forward on ``data``, the output of ``model.data_preprocessor``."""
    return lambda: model._forward(data['inputs'], data['data_samples'])


def end_to_end_step(model: nn.Module, images: Sequence[np.ndarray]) -> Callable[[], List[DetDataSample]]:
    """One end-to-end prediction of ``images``: packing, pre-processing, network, decoding, NMS."""
    return lambda: model.test_step(pack_images(images))


def _to_fp32(outputs):
    if isinstance(outputs, torch.Tensor):
        return outputs.float() if outputs.is_floating_point() else outputs
    if isinstance(outputs, (list, tuple)):
        return type(outputs)(_to_fp32(output) for output in outputs)
    return outputs


@contextmanager
def decode_in_fp32(model: nn.Module):
    """Cast the dense head's outputs to fp32, so that decoding and NMS run in fp32 under autocast.

    A no-op cast at fp32, and for a detector without ``bbox_head``.
    """
    head = getattr(model, 'bbox_head', None)
    handle = head.register_forward_hook(lambda module, args, outputs: _to_fp32(outputs)) if head else None
    try:
        yield
    finally:
        if handle is not None:
            handle.remove()


class _Network(nn.Module):
    """A detector's backbone + neck + head as a module called with the image batch alone
    (FlopAnalyzer calls ``module(inputs)``)."""

    def __init__(self, detector: nn.Module, data_samples: List[DetDataSample]):
        super().__init__()
        self.detector = detector
        self.data_samples = data_samples

    def forward(self, inputs: torch.Tensor) -> tuple:
        return self.detector._forward(inputs, self.data_samples)


def network_flops_per_image(model: nn.Module, data: dict) -> int:
    """FLOPs (2 x multiply-adds) of the network on one image of the pre-processed batch ``data``."""
    batch_shape = tuple(data['inputs'].shape)
    # eval(): count_flops restores the wrapper's mode, which would otherwise switch the detector to training.
    network = _Network(model, data['data_samples']).eval()
    return count_flops(network, batch_shape) // batch_shape[0]


def build_runner(model: nn.Module, cfg: Config, form: str, variant: str, precision: str, device: torch.device):
    """What runs a variant: the detector itself for 'mmdet', else an engine on a copy of it.

    Args:
        model (nn.Module): The detector, built by :func:`build_detector` in ``form``.
        cfg (Config): Its config (the engine reads pre-processing from it).
        form (str): 'deploy' or 'train'; the engine folds only the deploy form.
        variant (str): 'mmdet' or fast paths joined with '+'.
        precision (str): The engine's network dtype (mmdet's autocast is applied per step instead).
        device (torch.device): Where it runs.
    """
    if variant == MMDET_VARIANT:
        return model
    options = InferenceOptions.from_variant(variant, precision)
    if options.compile:
        # Every runner compiles the same forward again; past dynamo's recompilation limit it would
        # silently run eagerly.
        torch._dynamo.reset()
    return DetectorEngine(copy.deepcopy(model), cfg, device, options, deploy=form == 'deploy')


def _steps(runner, mode: str, images: List[np.ndarray], data: dict, device: torch.device, precision: str):
    """The step to time for ``mode`` and the contexts it runs in (autocast for mmdet, none for the engine).

    Args:
        runner (nn.Module | DetectorEngine): From :func:`build_runner`.
        mode (str): 'network' or 'end2end'.
        images (list[np.ndarray]): The batch, uint8 HWC.
        data (dict): The batch after mmdet's data preprocessor (the mmdet network step's input).
        device (torch.device): Where it runs.
        precision (str): The mmdet variant's autocast precision.
    """
    if isinstance(runner, DetectorEngine):
        if mode == 'network':
            batch, _ = runner.preprocess(images)
            return (lambda: runner.network(batch)), []
        return (lambda: runner(images)), []
    if mode == 'network':
        return network_step(runner, data), [autocast(device, precision)]
    return end_to_end_step(runner, images), [autocast(device, precision), decode_in_fp32(runner)]


def _measure(runner, mode: str, images: List[np.ndarray], data: dict, device: torch.device, precision: str,
             settings: BenchmarkSettings) -> dict:
    """Time one mode at one setting; returns the timing, memory and (end2end) detection-count fields."""
    step, contexts = _steps(runner, mode, images, data, device, precision)
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
    fields = dict(timing, ms_per_batch_repeats=block_ms,
                  images_per_s=len(images) * 1000 / timing['ms_per_batch_median'], peak_memory_mib=memory.mib)
    # How much work NMS had: with random weights it is not what a trained model gives it.
    fields['detections_per_image'] = (
        float(np.mean([len(sample.pred_instances) for sample in outputs])) if mode == 'end2end' else None)
    return fields


def check_settings(settings: BenchmarkSettings) -> torch.device:
    """Refuse a device, precision or variant that cannot run, before anything is measured.

    Returns:
        torch.device: The device to measure on.
    """
    device = resolve_device(settings.device)
    check_precisions(device, settings.precisions)
    for variant in settings.variants:
        if variant != MMDET_VARIANT:
            for precision in settings.precisions:
                InferenceOptions.from_variant(variant, precision).check(device)
    return device


def run_benchmark(models: Sequence[ModelSpec], settings: BenchmarkSettings, log: Callable[[str], None] = print,
                  on_row: Optional[Callable[[dict], None]] = None) -> List[dict]:
    """Measure every model in every form, variant, precision, resolution, batch size and mode.

    Args:
        models (Sequence[ModelSpec]): From :func:`load_model_specs`.
        settings (BenchmarkSettings): What to measure.
        log (Callable): Receives one progress line per measurement.
        on_row (Callable, optional): Receives each row as soon as it is measured.

    Returns:
        list[dict]: One row per measurement, with keys ``model``, ``config``,
        ``checkpoint``, ``form``, ``folded_blocks``, ``params`` (whole detector),
        ``backbone_depth``, ``variant``, ``precision``, ``device``, ``mode``
        ('network' or 'end2end'), ``resolution``, ``input_shape`` (the
        network's input), ``batch_size``, ``flops_per_image``,
        ``ms_per_batch_median``, ``ms_per_batch_min``, ``ms_per_batch_max``,
        ``ms_per_batch_repeats``, ``images_per_s`` (from the median),
        ``peak_memory_mib`` and ``detections_per_image`` (end2end only, else None).
    """
    device = check_settings(settings)
    if settings.threads is not None:
        torch.set_num_threads(settings.threads)
    if device.type == 'cuda':
        torch.backends.cudnn.benchmark = True  # fixed shapes: let cuDNN pick its kernels during warm-up
    total = (len(models) * len(settings.forms) * len(settings.variants) * len(settings.precisions)
             * len(settings.resolutions) * len(settings.batch_sizes) * len(MODES))
    rows = []
    for spec in models:
        for form in settings.forms:
            torch.manual_seed(0)  # the same weights, hence the same NMS workload, in every run
            model, folded = build_detector(spec.cfg, form, device, spec.checkpoint)
            smallest = min(settings.resolutions)
            model_fields = dict(model=spec.name, config=spec.config, checkpoint=spec.checkpoint, form=form,
                                folded_blocks=folded, params=count_parameters(model),
                                backbone_depth=measure_depth(model.backbone, (1, 3, smallest, smallest)))
            flops_per_image = {}
            for variant in settings.variants:
                for precision in settings.precisions:
                    runner = build_runner(model, spec.cfg, form, variant, precision, device)
                    for resolution in settings.resolutions:
                        if isinstance(runner, DetectorEngine):
                            runner.set_input_size((resolution, resolution))
                        for batch_size in settings.batch_sizes:
                            images = synthetic_images(resolution, batch_size)
                            with torch.inference_mode():
                                data = model.data_preprocessor(pack_images(images), False)
                            if resolution not in flops_per_image:
                                flops_per_image[resolution] = network_flops_per_image(model, data)
                            input_shape = (list(runner.input_size) if isinstance(runner, DetectorEngine)
                                           else list(data['inputs'].shape[-2:]))
                            for mode in MODES:
                                row = dict(model_fields, variant=variant, precision=precision, device=str(device),
                                           mode=mode, resolution=resolution, input_shape=input_shape,
                                           batch_size=batch_size, flops_per_image=flops_per_image[resolution])
                                row.update(_measure(runner, mode, images, data, device, precision, settings))
                                rows.append(row)
                                log(format_progress(row, len(rows), total))
                                if on_row is not None:
                                    on_row(row)
                    del runner
            del model
            if device.type == 'cuda':
                torch.cuda.empty_cache()
    return rows


def format_progress(row: dict, index: int, total: int) -> str:
    """One line per measurement, e.g. ``[ 3/16] name deploy mmdet fp32 64px b2 network  4.1 ms/batch ...``."""
    width = len(str(total))
    return (f'[{index:{width}d}/{total}] {row["model"]} {row["form"]} {row["variant"]} {row["precision"]} '
            f'{row["resolution"]}px '
            f'b{row["batch_size"]} {row["mode"]:<8s} {row["ms_per_batch_median"]:9.2f} ms/batch '
            f'(min {row["ms_per_batch_min"]:.2f}, max {row["ms_per_batch_max"]:.2f}) '
            f'{row["images_per_s"]:9.1f} img/s  peak mem {row["peak_memory_mib"]:.1f} MiB')
