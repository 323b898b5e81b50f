"""How a detector runs in each variant, and the step that is timed for each mode.

- ``mmdet``: the detector as mmdet runs it (``model(inputs, mode='tensor')`` /
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
- ``onnxruntime-int8`` / ``openvino-int8``: that graph quantized to INT8 for the
  runtime (:mod:`parnet_det.deploy.quantize`: ONNX Runtime's static QDQ, NNCF),
  calibrated once per model, input size and batch (``calibration_s``, apart from
  latency) on :data:`BENCHMARK_CALIBRATION_IMAGES` of the config's val images, or,
  where the config's val set is not there, on the benchmark's random images
  (``calibration_data`` says which: INT8 speed does not depend on the calibration,
  its accuracy does, and is measured on trained detectors instead,
  :mod:`parnet_det.deploy.runtime_accuracy`); its parity with PyTorch fp32 is a
  relative one.
- a runtime variant may name stream-parallel settings after '+'
  (:data:`~parnet_det.deploy.SESSION_OPTIONS`): ``onnxruntime+parallel``
  (parallel execution on inter-op threads), ``openvino+tensor_parallel``,
  ``openvino+unpinned``; the runtime's own defaults otherwise.

Modes, each the same scope in every variant and runtime (:data:`TIMED_SCOPES`, which every row records as
``timed_scope``):

- ``network``: from the letterboxed pixels of the batch, already on the device,
  to the dense boxes and scores before any threshold and NMS (RTMDet's
  protocol): normalisation, backbone, neck, head and box decoding. ``mmdet``:
  its data preprocessor on the packed batch, ``model(inputs, mode='tensor')`` and
  :meth:`~parnet_det.inference.DenseDetectorNetwork.boxes_and_scores` (mmdet has
  no decoding apart from its threshold and NMS); the engine: its normalisation,
  its network (fast paths) and the same decoding; a runtime: the exported graph,
  which holds all three.
- ``end2end``: what serving a batch of decoded images costs, from uint8 HWC
  images in host memory to boxes in original pixels: for ``mmdet``, packing as
  ``PackDetInputs`` does and ``model.test_step`` (data preprocessor, network,
  decoding and NMS per image); for the engine, copy to the device, resize and
  letterbox there, normalisation, the network, and batched NMS; for a runtime,
  the letterbox on the host, the graph, then the head's post-processing on the
  host (:data:`~parnet_det.deploy.runtime_detector.END2END_NMS`).

A detector without dense decoding (a head other than YOLOX's, RTMDet's and those
with ``boxes_and_scores``; none of this project's) is timed without it in
``network`` mode, and its rows' ``timed_scope`` says so.
"""
import copy
import os.path as osp
import tempfile
from contextlib import ExitStack, contextmanager
from functools import partial
from typing import Callable, ContextManager, Iterator, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn as nn
from mmengine.config import Config

from mmdet.models.detectors import SingleStageDetector

from ..deploy import RuntimeDetector, RuntimeVariant, calibration_images, check_calibration_data, runtime_missing
from ..inference import DenseDetectorNetwork, DetectorEngine, InferenceOptions
from .inputs import pack_images, synthetic_images
from .settings import MMDET_VARIANT
from .timing import autocast

Runner = Union[nn.Module, DetectorEngine, RuntimeDetector]
# What is inside the timer, per mode: the same in every variant and runtime.
TIMED_SCOPES = {
    'network': 'letterboxed pixels on the device -> normalisation, network, box decoding (no threshold, no NMS)',
    'end2end': 'uint8 images in host memory -> letterbox, normalisation, network, decoding, NMS: boxes in '
               'original pixels',
}
NO_DECODING_SCOPE = 'letterboxed pixels on the device -> normalisation, network (this head has no dense decoding)'
# Calibration images of the INT8 variants: few (INT8 speed does not depend on them; NNCF's default, 300, would cost
# minutes per model and size), the same for every model.
BENCHMARK_CALIBRATION_IMAGES = 8


def runtime_skip(variant: str, precision: str, device: torch.device) -> Optional[str]:
    """Why the rows of a runtime variant cannot be measured here, in one line; None for any other variant
    and for a runtime that can run (installed, fp32, on the CPU; INT8 with nncf for OpenVINO)."""
    runtime = RuntimeVariant.parse(variant)
    if runtime is None:
        return None
    missing = runtime_missing(runtime.runtime, runtime.precision)
    if missing is not None:
        return missing
    if precision != 'fp32':
        return (f'{variant} rows run the graph exported in fp32 (its float parts fp32), not {precision}: measure '
                'them at --precisions fp32')
    if device.type != 'cpu':
        return f'{variant} rows run on the CPU; this run measures {device}'
    return None


def benchmark_calibration(cfg: Config, side: int) -> Tuple[list, str]:
    """The INT8 variants' calibration images and where they come from, in words: the config's val images
    where its val set is there, else the benchmark's random images of ``side`` px."""
    try:
        check_calibration_data(cfg)
    except (OSError, ValueError):
        return (synthetic_images(side, BENCHMARK_CALIBRATION_IMAGES),
                f'{BENCHMARK_CALIBRATION_IMAGES} random images (the config\'s val set is not here)')
    images = calibration_images(cfg, BENCHMARK_CALIBRATION_IMAGES)
    return images, f'{len(images)} val images of the config'


def build_runtime(model: nn.Module, cfg: Config, form: str, variant: str, side: int, batch_size: int,
                  threads: Optional[int], calibration: Sequence = ()) -> RuntimeDetector:
    """A copy of ``model`` exported at ``side`` x ``side`` and ``batch_size`` (the file in a temporary folder,
    removed once the runtime has loaded it) and opened in the runtime of ``variant`` (:class:`RuntimeVariant`:
    quantized on ``calibration`` for an INT8 one, with its stream-parallel settings)."""
    runtime = RuntimeVariant.parse(variant)
    engine = DetectorEngine(copy.deepcopy(model).cpu(), cfg, 'cpu', deploy=form == 'deploy', input_size=(side, side))
    with tempfile.TemporaryDirectory(prefix='parnet_det_onnx_') as folder:
        return RuntimeDetector.export(engine, runtime.runtime, osp.join(folder, 'model.onnx'), batch_size,
                                      threads=threads, precision=runtime.precision, calibration=calibration,
                                      session_options=runtime.options)


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
    if (variant != MMDET_VARIANT and RuntimeVariant.parse(variant) is None
            and InferenceOptions.from_variant(variant, 'fp32').compile):
        torch.compiler.reset()


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


def dense_network(runner: Runner) -> Optional[DenseDetectorNetwork]:
    """The network the ``network`` mode runs (mmdet's tensor mode, with YOLOX's batched decoding), where it
    can decode dense boxes; None for a runtime (its graph decodes) and where it cannot (see :func:`timed_scope`)."""
    if isinstance(runner, RuntimeDetector):
        return None
    if isinstance(runner, DetectorEngine):
        network = runner.dense_network
    elif isinstance(runner, SingleStageDetector):
        network = DenseDetectorNetwork(runner)
    else:
        return None
    return network if network.exports_boxes else None


def timed_scope(runner: Runner, mode: str) -> str:
    """What the timer of ``runner``'s ``mode`` step holds, in words (the row's ``timed_scope``)."""
    if mode == 'network' and not isinstance(runner, RuntimeDetector) and dense_network(runner) is None:
        return NO_DECODING_SCOPE
    return TIMED_SCOPES[mode]


def _decoding(network: Optional[DenseDetectorNetwork]) -> Callable[[object], object]:
    """Network outputs -> the graph's dense boxes and scores in fp32; the identity without a network that decodes."""
    if network is None:
        return lambda outputs: outputs
    return lambda outputs: network.boxes_and_scores(_to_fp32(outputs))


def timed_step(runner: Runner, mode: str, images: Sequence[np.ndarray], device: torch.device,
               precision: str) -> Tuple[Callable[[], object], Callable[[], ContextManager]]:
    """The step to time for ``mode`` (:data:`TIMED_SCOPES`), and what makes the context it runs in (inference
    mode; autocast and the fp32 decoding for mmdet): entered around each block, so that the blocks of several
    models can alternate. What is before the timer (the letterbox of ``network`` mode) is done here, once.

    Args:
        runner (nn.Module | DetectorEngine | RuntimeDetector): From :func:`build_runner` or :func:`build_runtime`.
        mode (str): 'network' or 'end2end'.
        images (list[np.ndarray]): The batch, uint8 HWC (the benchmark's are squares of the input size).
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
            with torch.inference_mode():
                pixels, _ = runner.preprocess.letterbox(images)
            decode = _decoding(dense_network(runner))
            return (lambda: decode(runner.network(runner.preprocess.normalise(pixels)))), torch.inference_mode
        return (lambda: runner(images)), torch.inference_mode
    context = lambda: _entered(torch.inference_mode(), autocast(device, precision), decode_in_fp32(runner))
    if mode == 'network':
        # The images are squares of the input size: PackDetInputs' tensors are the letterboxed pixels.
        packed, network = pack_images(images), dense_network(runner)
        # mmdet's tensor mode (its _forward), or the dense network with YOLOX's batched decoding.
        forward = partial(runner, mode='tensor') if network is None else network
        decode = _decoding(network)
        return (lambda: decode(forward(runner.data_preprocessor(packed, False)['inputs']))), context
    return (lambda: runner.test_step(pack_images(images))), context


@contextmanager
def _entered(*contexts: ContextManager) -> Iterator[None]:
    with ExitStack() as stack:
        for context in contexts:
            stack.enter_context(context)
        yield
