"""The runtimes a deployer runs an exported graph in: ONNX Runtime and OpenVINO, each optional.

    session = open_session('openvino', 'yolov4_csp.onnx')     # compiled once; session.compile_s
    boxes, scores = session(pixels)                           # (B, 3, H, W) float32 letterboxed BGR pixels

A session runs the graph of :func:`~parnet_det.deploy.export_onnx` (pixels in,
dense ``boxes`` and ``scores`` out, no NMS) and nothing else, in fp32:

- ``onnxruntime``: ``InferenceSession`` with the CPU provider (its CUDA provider
  where the device is CUDA and the installed build has it);
- ``openvino``: ``Core.compile_model`` on the CPU with ``INFERENCE_PRECISION_HINT``
  f32 (OpenVINO would otherwise run bf16 on CPUs with AMX, and an fp32 row
  would time something else).

Neither is a requirement of the package (``requirements/deploy.txt``); each is
imported when a session is opened, and :func:`runtime_missing` says in one line
why one cannot be.
"""
import importlib.util
import time
from dataclasses import dataclass
from typing import Callable, Optional, Tuple

import numpy as np
import torch

from .onnx_export import INPUT_NAME, INSTALL_HINT, OUTPUT_NAMES, require

# Runtime name -> the module it needs.
RUNTIMES = {'onnxruntime': 'onnxruntime', 'openvino': 'openvino'}


def runtime_missing(runtime: str) -> Optional[str]:
    """None where ``runtime`` can run here; else why not, in one line."""
    if runtime not in RUNTIMES:
        return f'unknown runtime {runtime!r}; choose from {", ".join(RUNTIMES)}'
    if importlib.util.find_spec(RUNTIMES[runtime]) is None:
        return f'{runtime} is not installed ({INSTALL_HINT})'
    return None


@dataclass
class RuntimeSession:
    """One exported graph, loaded and compiled by a runtime.

    Args:
        runtime (str): 'onnxruntime' or 'openvino'.
        version (str): The runtime's version.
        target (str): What runs it (ONNX Runtime's provider, OpenVINO's device).
        compile_s (float): Seconds it took to load and compile the graph (kept apart from latency).
        run (Callable): float32 pixels (B, 3, H, W) -> (boxes, scores) as numpy arrays.
        input_size (tuple[int, int], optional): The graph's (H, W); None where they are dynamic (any rectangle).
    """
    runtime: str
    version: str
    target: str
    compile_s: float
    run: Callable[[np.ndarray], Tuple[np.ndarray, np.ndarray]]
    input_size: Optional[Tuple[int, int]] = None

    def __call__(self, pixels) -> Tuple[torch.Tensor, torch.Tensor]:
        """``boxes`` (B, N, 4) and ``scores`` (B, N, C) as tensors (sharing the runtime's output memory)."""
        array = pixels.numpy() if isinstance(pixels, torch.Tensor) else pixels
        boxes, scores = self.run(np.ascontiguousarray(array, dtype=np.float32))
        return torch.from_numpy(boxes), torch.from_numpy(scores)


def _onnxruntime(path: str, device: torch.device, threads: Optional[int]):
    ort = require('onnxruntime', 'the onnxruntime runtime')
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    providers = ['CPUExecutionProvider']
    if device.type == 'cuda' and 'CUDAExecutionProvider' in ort.get_available_providers():
        providers.insert(0, ('CUDAExecutionProvider', {'device_id': device.index or 0}))
    session = ort.InferenceSession(path, options, providers=providers)
    run = lambda pixels: tuple(session.run(list(OUTPUT_NAMES), {INPUT_NAME: pixels}))
    # Fixed dimensions are ints, dynamic ones names (or None).
    sides = session.get_inputs()[0].shape[2:]
    return ort.__version__, session.get_providers()[0], run, _fixed(sides, lambda side: isinstance(side, int), int)


def _openvino(path: str, device: torch.device, threads: Optional[int]):
    ov = require('openvino', 'the openvino runtime')
    config = {'INFERENCE_PRECISION_HINT': 'f32'}
    if threads:
        config['INFERENCE_NUM_THREADS'] = threads
    compiled = ov.Core().compile_model(path, 'CPU', config)
    request = compiled.create_infer_request()
    outputs = [compiled.output(name) for name in OUTPUT_NAMES]

    def run(pixels):
        request.infer({INPUT_NAME: pixels})
        return tuple(request.get_tensor(output).data for output in outputs)

    sides = list(compiled.input(INPUT_NAME).get_partial_shape())[2:]
    return ov.__version__, 'CPU', run, _fixed(sides, lambda side: side.is_static, lambda side: side.get_length())


def _fixed(sides, is_fixed: Callable, length: Callable) -> Optional[Tuple[int, int]]:
    """The graph's (H, W) from its input's last two dimensions; None where either is dynamic."""
    return tuple(length(side) for side in sides) if all(is_fixed(side) for side in sides) else None


def open_session(runtime: str, onnx_path: str, device='cpu', threads: Optional[int] = None) -> RuntimeSession:
    """Load and compile ``onnx_path`` in ``runtime``; ImportError (with the install hint) where it is missing.

    Args:
        runtime (str): 'onnxruntime' or 'openvino'.
        onnx_path (str): A graph of :func:`~parnet_det.deploy.export_onnx`.
        device (str | torch.device): 'cpu'; 'cuda' uses ONNX Runtime's CUDA provider where installed
            (OpenVINO runs on the CPU).
        threads (int, optional): The runtime's intra-op threads; None keeps its default.
    """
    missing = runtime_missing(runtime)
    if missing is not None and runtime not in RUNTIMES:
        raise ValueError(missing)
    start = time.perf_counter()
    version, target, run, input_size = (_onnxruntime if runtime == 'onnxruntime' else _openvino)(
        onnx_path, torch.device(device), threads)
    return RuntimeSession(runtime=runtime, version=version, target=target, compile_s=time.perf_counter() - start,
                          run=run, input_size=input_size)
