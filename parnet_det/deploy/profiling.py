"""Where a runtime spends a graph's time: milliseconds per operator type, from the runtime's own profiler.

    profile = profile_operators('onnxruntime', 'model.onnx', pixels, runs=10)
    for entry in profile.entries: ...       # op type, kernel, ms per run, calls per run

- ``onnxruntime``: its profiler (``SessionOptions.enable_profiling``), the ``Node`` events of the
  runs (each node's kernel time; the session's own overhead is apart, in ``total_ms``);
- ``openvino``: its performance counters (``PERF_COUNT``: ``get_profiling_info`` after each run),
  per executed node: its type after OpenVINO's fusions (a fused SiLU or Mish is inside its
  convolution) and its kernel (``exec_type``, e.g. ``jit_avx512_I8`` for an int8 one).

Both sessions are opened as :func:`~.runtimes.open_session` opens them (fp32 inference precision,
the same threads and stream-parallel settings); the profile's time is the kernels' time, under the
profiler's overhead: compare operators within a profile, and runtimes by their ratios, not by its
total against a timed benchmark row.
"""
import json
import os
import tempfile
import time
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from .onnx_export import INPUT_NAME, require
from .runtimes import check_session_options, onnxruntime_options, openvino_config, openvino_core, runtime_missing


@dataclass
class OperatorTime:
    """One operator type's share of a run.

    Args:
        op_type (str): The operator (ONNX op type; OpenVINO's node type after its fusions).
        kernel (str): The kernels that ran it ('' where the runtime does not say).
        ms (float): Milliseconds per run, summed over its nodes.
        calls (int): Its nodes executed per run.
    """
    op_type: str
    kernel: str
    ms: float
    calls: int


@dataclass
class OperatorProfile:
    """What :func:`profile_operators` measured.

    Args:
        runtime (str): The runtime.
        runs (int): Profiled runs (after one unprofiled warm-up).
        total_ms (float): Wall milliseconds per run around the runtime's call.
        entries (list[OperatorTime]): Per operator type, slowest first.
    """
    runtime: str
    runs: int
    total_ms: float
    entries: List[OperatorTime]

    @property
    def operators_ms(self) -> float:
        return sum(entry.ms for entry in self.entries)

    def table(self) -> str:
        """Markdown: the operators, their ms per run, share of the operators' time, calls and kernels."""
        lines = [f'{self.runtime}: {self.total_ms:.1f} ms per run (wall, {self.runs} runs), operators '
                 f'{self.operators_ms:.1f} ms', '', '| operator | ms per run | share | calls | kernels |',
                 '|---|---|---|---|---|']
        lines += [f'| {entry.op_type} | {entry.ms:.2f} | {entry.ms / max(self.operators_ms, 1e-9):.1%} | '
                  f'{entry.calls} | {entry.kernel} |' for entry in self.entries]
        return '\n'.join(lines)


def _grouped(times: Dict[Tuple[str, str], List[float]], runs: int) -> List[OperatorTime]:
    """(op type, kernel) -> every node's ms over all runs  ->  one entry per op type, slowest first."""
    by_type: Dict[str, List[Tuple[str, List[float]]]] = {}
    for (op_type, kernel), samples in times.items():
        by_type.setdefault(op_type, []).append((kernel, samples))
    entries = [OperatorTime(op_type, ', '.join(sorted({kernel for kernel, _ in groups if kernel})),
                            sum(sum(samples) for _, samples in groups) / runs,
                            sum(len(samples) for _, samples in groups) // runs)
               for op_type, groups in by_type.items()]
    return sorted(entries, key=lambda entry: -entry.ms)


def _profile_onnxruntime(path: str, pixels: np.ndarray, runs: int, threads: Optional[int],
                         options: Sequence[str]) -> Tuple[float, List[OperatorTime]]:
    ort = require('onnxruntime', 'profiling in onnxruntime')
    session_options = onnxruntime_options(threads, options)
    with tempfile.TemporaryDirectory(prefix='parnet_det_profile_') as folder:
        session_options.enable_profiling = True
        session_options.profile_file_prefix = os.path.join(folder, 'ort')
        session = ort.InferenceSession(path, session_options, providers=['CPUExecutionProvider'])
        session.run(None, {INPUT_NAME: pixels})  # warm-up: its events are left out below
        start = time.perf_counter()
        for _ in range(runs):
            session.run(None, {INPUT_NAME: pixels})
        total_ms = (time.perf_counter() - start) * 1000 / runs
        with open(session.end_profiling()) as file:
            events = json.load(file)
    # The profiler holds every run: the nodes of the warm-up run end before the first run's end.
    warm_up_end = min(event['ts'] + event['dur'] for event in events if event.get('name') == 'model_run')
    times: Dict[Tuple[str, str], List[float]] = {}
    for event in events:
        if event.get('cat') == 'Node' and event['name'].endswith('_kernel_time') and event['ts'] > warm_up_end:
            args = event.get('args', {})
            times.setdefault((args.get('op_name', '?'), args.get('provider', '')), []).append(event['dur'] / 1000)
    return total_ms, _grouped(times, runs)


def _profile_openvino(path: str, pixels: np.ndarray, runs: int, threads: Optional[int],
                      options: Sequence[str]) -> Tuple[float, List[OperatorTime]]:
    ov = require('openvino', 'profiling in openvino')
    config = dict(openvino_config(threads, options), PERF_COUNT=True)
    request = openvino_core().compile_model(path, 'CPU', config).create_infer_request()
    request.infer({INPUT_NAME: pixels})  # warm-up
    times: Dict[Tuple[str, str], List[float]] = {}
    wall = 0.0
    for _ in range(runs):
        start = time.perf_counter()
        request.infer({INPUT_NAME: pixels})
        wall += time.perf_counter() - start
        for info in request.get_profiling_info():
            if info.status == ov.ProfilingInfo.Status.EXECUTED:
                times.setdefault((info.node_type, info.exec_type), []).append(info.real_time.total_seconds() * 1000)
    return wall * 1000 / runs, _grouped(times, runs)


def profile_operators(runtime: str, graph_path: str, pixels: np.ndarray, runs: int = 10,
                      threads: Optional[int] = None, options: Sequence[str] = ()) -> OperatorProfile:
    """Milliseconds per operator type of ``runs`` runs of a graph on ``pixels``, after one warm-up run.

    Args:
        runtime (str): 'onnxruntime' or 'openvino'.
        graph_path (str): An exported graph, fp32 or INT8 (:func:`~.quantize.quantize_graph`).
        pixels (np.ndarray): Its input, letterboxed float32 pixels (B, 3, H, W).
        runs (int): Profiled runs.
        threads (int, optional): The runtime's intra-op threads; None keeps its default.
        options (Sequence[str]): Stream-parallel settings (:data:`~.runtimes.SESSION_OPTIONS`).
    """
    missing = runtime_missing(runtime)
    if missing is not None:
        raise ImportError(missing) if 'not installed' in missing else ValueError(missing)
    check_session_options(runtime, options)
    if runs < 1:
        raise ValueError(f'runs must be at least 1, got {runs}')
    profile = _profile_onnxruntime if runtime == 'onnxruntime' else _profile_openvino
    total_ms, entries = profile(graph_path, np.ascontiguousarray(pixels, dtype=np.float32), runs, threads, options)
    return OperatorProfile(runtime, runs, total_ms, entries)
