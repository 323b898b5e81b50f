"""How a detector runs in each variant, and the step that is timed for each mode.

- ``mmdet``: the detector as mmdet runs it (``model._forward`` /
  ``model.test_step``); reduced precisions under ``torch.autocast``, as mmdet's
  ``--amp``. The head's outputs are cast back to fp32 before decoding, so that
  decoding and NMS run in fp32 (mmcv's NMS kernels take no bf16, its CPU
  kernel no fp16 either).
- anything else: :class:`~parnet_det.inference.DetectorEngine` with the fast
  paths named, joined with '+' (``eager`` for none; ``streams``,
  ``channels_last``, ``compile``, ``max_autotune``, ``cuda_graph``); reduced
  precisions cast the network's weights and input (decoding and NMS stay fp32).
  ``channels_last+max_autotune+cuda_graph`` is the fastest GPU path here:
  torch.compile's max-autotune kernels replayed in a CUDA graph.

- ``onnxruntime`` / ``openvino``: the folded detector exported to ONNX once per
  model, input size and batch (:class:`~parnet_det.deploy.RuntimeDetector`), run
  in that runtime on the CPU in fp32; the export and the runtime's compilation
  are timed apart (``export_s``, ``compile_s``), and every row records the
  parity of its boxes and scores with PyTorch before NMS (``parity_*``).

Modes:

- ``network``: on a batch that was pre-processed beforehand and already lies
  on the device: ``model._forward`` (backbone, neck, head; no decoding) for
  ``mmdet``, the engine's network (with batched box decoding for YOLOX heads,
  before NMS) for the engine variants.
- ``end2end``: what serving a batch of decoded images costs, from uint8 HWC
  images in host memory to boxes in original pixels: for ``mmdet``, packing as
  ``PackDetInputs`` does and ``model.test_step`` (data preprocessor, network,
  decoding and NMS per image); for the engine, copy to the device, resize and
  letterbox there, normalisation, the network, and batched NMS; for a runtime,
  on the network's side (``network``) the graph on the letterboxed pixels
  (normalisation, network, box decoding: RTMDet's protocol, no NMS), end to end
  the letterbox on the host, the graph, then the head's post-processing on the
  host (:data:`~parnet_det.deploy.runtime_detector.END2END_NMS`).
"""
import copy
import os.path as osp
import tempfile
from contextlib import ExitStack, contextmanager
from typing import Callable, ContextManager, Iterator, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn as nn
from mmengine.config import Config

from ..deploy import RUNTIMES, RuntimeDetector, runtime_missing
from ..inference import DetectorEngine, InferenceOptions
from .inputs import pack_images
from .settings import MMDET_VARIANT
from .timing import autocast

Runner = Union[nn.Module, DetectorEngine, RuntimeDetector]


def runtime_skip(variant: str, precision: str, device: torch.device) -> Optional[str]:
    """Why the rows of a runtime variant cannot be measured here, in one line; None for any other variant
    and for a runtime that can run (installed, fp32, on the CPU)."""
    if variant not in RUNTIMES:
        return None
    missing = runtime_missing(variant)
    if missing is not None:
        return missing
    if precision != 'fp32':
        return f'{variant} rows are fp32 only (the graph is exported in fp32), not {precision}'
    if device.type != 'cpu':
        return f'{variant} rows run on the CPU; this run measures {device}'
    return None


def build_runtime(model: nn.Module, cfg: Config, form: str, runtime: str, side: int, batch_size: int,
                  threads: Optional[int]) -> RuntimeDetector:
    """A copy of ``model`` exported at ``side`` x ``side`` and ``batch_size`` (the file in a temporary folder,
    removed once the runtime has loaded it) and opened in ``runtime``."""
    engine = DetectorEngine(copy.deepcopy(model).cpu(), cfg, 'cpu', deploy=form == 'deploy', input_size=(side, side))
    with tempfile.TemporaryDirectory(prefix='parnet_det_onnx_') as folder:
        return RuntimeDetector.export(engine, runtime, osp.join(folder, 'model.onnx'), batch_size, threads=threads)


def build_runner(model: nn.Module, cfg: Config, form: str, variant: str, precision: str,
                 device: torch.device) -> Runner:
    """What runs a variant: the detector itself for 'mmdet', else an engine on a copy of it.

    Args:
        model (nn.Module): The detector, in ``form``, on ``device``.
        cfg (Config): Its config (the engine reads pre-processing from it).
        form (str): 'deploy' or 'train'; the engine folds only the deploy form.
        variant (str): 'mmdet' or fast paths joined with '+'.
        precision (str): The engine's network dtype (mmdet's autocast is applied per step instead).
        device (torch.device): Where it runs.
    """
    if variant == MMDET_VARIANT:
        return model
    options = InferenceOptions.from_variant(variant, precision)
    return DetectorEngine(copy.deepcopy(model), cfg, device, options, deploy=form == 'deploy')


def reset_compiled(variant: str) -> None:
    """Before the runners of one setting are built: forget earlier settings' compiled code. Every runner
    compiles the same forward again, and past dynamo's recompilation limit it would silently run eagerly; a
    reset between the runners of one setting would make the earlier ones recompile inside their timed
    repeats."""
    if variant not in (MMDET_VARIANT, *RUNTIMES) and InferenceOptions.from_variant(variant, 'fp32').compile:
        torch._dynamo.reset()


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


def timed_step(runner: Runner, mode: str, images: Sequence[np.ndarray], data: dict, device: torch.device,
               precision: str) -> Tuple[Callable[[], object], Callable[[], ContextManager]]:
    """The step to time for ``mode``, and what makes the context it runs in (inference mode; autocast and the
    fp32 decoding for mmdet): entered around each block, so that the blocks of several models can alternate.

    Args:
        runner (nn.Module | DetectorEngine): From :func:`build_runner`.
        mode (str): 'network' or 'end2end'.
        images (list[np.ndarray]): The batch, uint8 HWC.
        data (dict): The batch after mmdet's data preprocessor (the mmdet network step's input).
        device (torch.device): Where it runs.
        precision (str): The mmdet variant's autocast precision.
    """
    if isinstance(runner, RuntimeDetector):
        if mode == 'network':
            pixels, _ = runner.pixels(images)
            return (lambda: runner.network(pixels)), torch.inference_mode
        return (lambda: runner(images)), torch.inference_mode
    if isinstance(runner, DetectorEngine):
        if mode == 'network':
            batch, _ = runner.preprocess(images)
            return (lambda: runner.network(batch)), torch.inference_mode
        return (lambda: runner(images)), torch.inference_mode
    if mode == 'network':
        return (lambda: runner._forward(data['inputs'], data['data_samples'])), lambda: _entered(
            torch.inference_mode(), autocast(device, precision))
    return (lambda: runner.test_step(pack_images(images))), lambda: _entered(
        torch.inference_mode(), autocast(device, precision), decode_in_fp32(runner))


@contextmanager
def _entered(*contexts: ContextManager) -> Iterator[None]:
    with ExitStack() as stack:
        for context in contexts:
            stack.enter_context(context)
        yield
