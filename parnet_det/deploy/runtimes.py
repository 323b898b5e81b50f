"""The runtimes a deployer runs an exported graph in: ONNX Runtime and OpenVINO, each optional.

    session = open_session('openvino', 'yolov4_csp.onnx')     # compiled once; session.compile_s
    boxes, scores = session(pixels)                           # (B, 3, H, W) float32 letterboxed BGR pixels

A session runs the graph of :func:`~parnet_det.deploy.export_onnx` (pixels in,
dense ``boxes`` and ``scores`` out, no NMS) and nothing else, in fp32 (or its INT8
quantization, :mod:`.quantize`, whose float parts run in fp32 too):

- ``onnxruntime``: ``InferenceSession`` with the CPU provider (its CUDA provider
  where the device is CUDA and the installed build has it);
- ``openvino``: ``Core.compile_model`` on the CPU with ``INFERENCE_PRECISION_HINT``
  f32 (OpenVINO would otherwise run bf16 on CPUs with AMX, and an fp32 row
  would time something else), every session on the process's one Core
  (:func:`openvino_core`).

Stream-parallel settings (:data:`SESSION_OPTIONS`) are named per session, and in a benchmark
variant after '+' (:class:`RuntimeVariant`: ``onnxruntime-int8+parallel``); each default is the
runtime's own.

Neither is a requirement of the package (``requirements/deploy.txt``); each is
imported when a session is opened, and :func:`runtime_missing` says in one line
why one cannot be.
"""
import functools
import importlib.util
import time
from dataclasses import dataclass
from typing import Callable, Optional, Sequence, Tuple

import numpy as np
import torch

from .onnx_export import INPUT_NAME, INSTALL_HINT, OUTPUT_NAMES, require

# Runtime name -> the module it needs.
RUNTIMES = {'onnxruntime': 'onnxruntime', 'openvino': 'openvino'}
# What a runtime's graph computes in: the exported fp32 graph, or its INT8 quantization (.quantize).
PRECISIONS = ('fp32', 'int8')
INT8_SUFFIX = '-int8'
# Stream-parallel settings per runtime: name -> what it changes (the runtime's default otherwise).
SESSION_OPTIONS = {
    'onnxruntime': {
        'parallel': 'parallel execution mode: independent branches (ParNet\'s streams, the SSE gates) run at once on '
                    'the inter-op pool, as many threads as the intra-op pool',
    },
    'openvino': {
        'tensor_parallel': 'model distribution policy TENSOR_PARALLEL: one request split across the sockets '
                           '(sub-streams), where the LATENCY hint keeps it on one',
        'unpinned': 'threads not pinned to cores (ENABLE_CPU_PINNING off), for a machine shared with other work',
    },
}


def runtime_missing(runtime: str, precision: str = 'fp32') -> Optional[str]:
    """None where ``runtime`` can run here at ``precision``; else why not, in one line (INT8 in OpenVINO also
    needs NNCF, which quantizes for it)."""
    if runtime not in RUNTIMES:
        return f'unknown runtime {runtime!r}; choose from {", ".join(RUNTIMES)}'
    if importlib.util.find_spec(RUNTIMES[runtime]) is None:
        return f'{runtime} is not installed ({INSTALL_HINT})'
    if precision == 'int8' and runtime == 'openvino' and importlib.util.find_spec('nncf') is None:
        return f'INT8 in openvino needs nncf, which is not installed ({INSTALL_HINT})'
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
        options (tuple[str]): Its stream-parallel settings (:data:`SESSION_OPTIONS`).
    """
    runtime: str
    version: str
    target: str
    compile_s: float
    run: Callable[[np.ndarray], Tuple[np.ndarray, np.ndarray]]
    input_size: Optional[Tuple[int, int]] = None
    options: Tuple[str, ...] = ()

    def __call__(self, pixels) -> Tuple[torch.Tensor, torch.Tensor]:
        """``boxes`` (B, N, 4) and ``scores`` (B, N, C) as tensors (sharing the runtime's output memory)."""
        array = pixels.numpy() if isinstance(pixels, torch.Tensor) else pixels
        boxes, scores = self.run(np.ascontiguousarray(array, dtype=np.float32))
        return torch.from_numpy(boxes), torch.from_numpy(scores)


def onnxruntime_options(threads: Optional[int] = None, settings: Sequence[str] = ()):
    """ONNX Runtime's ``SessionOptions`` of a session: its threads and stream-parallel settings."""
    ort = require('onnxruntime', 'the onnxruntime runtime')
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    if 'parallel' in settings:
        options.execution_mode = ort.ExecutionMode.ORT_PARALLEL
        if threads:
            options.inter_op_num_threads = threads
    return options


def openvino_config(threads: Optional[int] = None, settings: Sequence[str] = ()) -> dict:
    """OpenVINO's CPU compile configuration of a session: fp32 (OpenVINO would otherwise run bf16 on CPUs that have
    it), its threads and stream-parallel settings."""
    ov = require('openvino', 'the openvino runtime')
    config = {'INFERENCE_PRECISION_HINT': 'f32'}
    if threads:
        config['INFERENCE_NUM_THREADS'] = threads
    if 'tensor_parallel' in settings:
        config['MODEL_DISTRIBUTION_POLICY'] = {ov.properties.hint.ModelDistributionPolicy.TENSOR_PARALLEL}
    if 'unpinned' in settings:
        config['ENABLE_CPU_PINNING'] = False
    return config


def _onnxruntime(path: str, device: torch.device, threads: Optional[int], settings: Sequence[str]):
    ort = require('onnxruntime', 'the onnxruntime runtime')
    options = onnxruntime_options(threads, settings)
    providers = ['CPUExecutionProvider']
    if device.type == 'cuda' and 'CUDAExecutionProvider' in ort.get_available_providers():
        providers.insert(0, ('CUDAExecutionProvider', {'device_id': device.index or 0}))
    session = ort.InferenceSession(path, options, providers=providers)
    run = lambda pixels: tuple(session.run(list(OUTPUT_NAMES), {INPUT_NAME: pixels}))
    # Fixed dimensions are ints, dynamic ones names (or None).
    sides = session.get_inputs()[0].shape[2:]
    return ort.__version__, session.get_providers()[0], run, _fixed(sides, lambda side: isinstance(side, int), int)


@functools.lru_cache(maxsize=None)
def openvino_core():
    """The process's one OpenVINO Core, kept to its end. A Core's CPU plugin points the main thread's alternate
    signal stack at a buffer of its own and, when the Core goes, back at the stack it found: two Cores released
    out of order (sessions, NNCF's during quantization) leave it pointing at freed memory, and the next Python
    signal handler run (Ctrl-C, SIGTERM) dies of a segmentation fault (OpenVINO 2026.4). Sessions and profiles
    share this one; NNCF's Core releases its stack when quantization ends (:mod:`.quantize`)."""
    return require('openvino', 'the openvino runtime').Core()


def _openvino(path: str, device: torch.device, threads: Optional[int], settings: Sequence[str]):
    ov = require('openvino', 'the openvino runtime')
    config = openvino_config(threads, settings)
    compiled = openvino_core().compile_model(path, 'CPU', config)
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


def check_session_options(runtime: str, options: Sequence[str]) -> None:
    """Refuse, in one line, a stream-parallel setting ``runtime`` does not have."""
    unknown = [option for option in options if option not in SESSION_OPTIONS.get(runtime, {})]
    if unknown:
        raise ValueError(f'{runtime} has no setting {", ".join(unknown)}; its settings: '
                         f'{", ".join(SESSION_OPTIONS.get(runtime, {})) or "none"}')


def open_session(runtime: str, onnx_path: str, device='cpu', threads: Optional[int] = None,
                 options: Sequence[str] = ()) -> RuntimeSession:
    """Load and compile ``onnx_path`` in ``runtime``; ImportError (with the install hint) where it is missing.

    Args:
        runtime (str): 'onnxruntime' or 'openvino'.
        onnx_path (str): A graph of :func:`~parnet_det.deploy.export_onnx`, or its INT8 quantization
            (:func:`~.quantize.quantize_graph`: ONNX, or OpenVINO IR ``.xml``).
        device (str | torch.device): 'cpu'; 'cuda' uses ONNX Runtime's CUDA provider where installed
            (OpenVINO runs on the CPU).
        threads (int, optional): The runtime's intra-op threads; None keeps its default.
        options (Sequence[str]): Stream-parallel settings of :data:`SESSION_OPTIONS`.
    """
    missing = runtime_missing(runtime)
    if missing is not None and runtime not in RUNTIMES:
        raise ValueError(missing)
    check_session_options(runtime, options)
    start = time.perf_counter()
    version, target, run, input_size = (_onnxruntime if runtime == 'onnxruntime' else _openvino)(
        onnx_path, torch.device(device), threads, options)
    return RuntimeSession(runtime=runtime, version=version, target=target, compile_s=time.perf_counter() - start,
                          run=run, input_size=input_size, options=tuple(options))


def graph_input(onnx_path: str) -> Tuple[Optional[int], Optional[Tuple[int, int]]]:
    """The fixed batch (None: dynamic) and (H, W) (None: dynamic) of an exported graph's input, read without
    compiling it."""
    onnx = require('onnx', 'reading an ONNX graph')
    graph = onnx.load(onnx_path, load_external_data=False).graph
    image = next(value for value in graph.input if value.name == INPUT_NAME)
    dims = [dim.dim_value if dim.HasField('dim_value') else None for dim in image.type.tensor_type.shape.dim]
    return dims[0], _fixed(dims[2:], lambda side: side is not None, int)


@dataclass(frozen=True)
class RuntimeVariant:
    """A benchmark variant that runs the exported graph in a runtime: ``<runtime>[-int8][+<setting>...]``, e.g.
    ``openvino``, ``onnxruntime-int8``, ``onnxruntime+parallel``.

    Args:
        runtime (str): 'onnxruntime' or 'openvino'.
        precision (str): 'fp32' or 'int8' (:data:`PRECISIONS`).
        options (tuple[str]): Stream-parallel settings (:data:`SESSION_OPTIONS`).
    """
    runtime: str
    precision: str = 'fp32'
    options: Tuple[str, ...] = ()

    @classmethod
    def parse(cls, variant: str) -> Optional['RuntimeVariant']:
        """The runtime variant ``variant`` names; None for any other variant (mmdet, the engine's); ValueError
        for a runtime's variant with a setting it does not have."""
        head, *options = variant.split('+')
        runtime = head[:-len(INT8_SUFFIX)] if head.endswith(INT8_SUFFIX) else head
        if runtime not in RUNTIMES:
            return None
        check_session_options(runtime, options)
        return cls(runtime, 'int8' if head.endswith(INT8_SUFFIX) else 'fp32', tuple(options))
