"""Device-agnostic timing primitives: precision, repeated timing, peak memory.

Nothing here knows about detectors; :mod:`.detector` says what is timed.
"""
import resource
import statistics
import sys
import time
from typing import Callable, Dict, List, Optional, Sequence

import torch

from ..inference.fast_paths import PRECISION_DTYPES, check_precision
from ..utils.collect_env import cpu_model
from ..utils.device import check_device

# Precision name -> dtype; fp32 runs without autocast.
PRECISIONS = PRECISION_DTYPES


def resolve_device(device: str) -> torch.device:
    """Parse ``device`` ('cpu', 'cuda', 'cuda:N'), refusing another type or a CUDA device torch cannot use."""
    parsed = check_device(device)
    if parsed.type not in ('cpu', 'cuda'):
        raise ValueError(f'--device {device}: only cpu and cuda are supported')
    return parsed


def hardware_name(device: torch.device) -> str:
    """The hardware a row was measured on, in words: the GPU's name, or the CPU's model and torch's threads."""
    if device.type == 'cuda':
        return torch.cuda.get_device_name(device)
    return f'{cpu_model()}, {torch.get_num_threads()} threads'


def check_precisions(device: torch.device, precisions: Sequence[str]) -> None:
    """Refuse precisions that are unknown or that this device cannot run meaningfully
    (see :func:`~parnet_det.inference.fast_paths.check_precision`: fp16 needs CUDA, bf16 on the CPU).

    Args:
        device (torch.device): The device to benchmark on.
        precisions (Sequence[str]): Names from :data:`PRECISIONS`.
    """
    for precision in precisions:
        check_precision(device, precision)


def autocast(device: torch.device, precision: str):
    """``torch.autocast`` for ``precision``; a disabled one (plain fp32) for 'fp32'."""
    dtype = PRECISIONS[precision]
    return torch.autocast(device_type=device.type, dtype=dtype, enabled=dtype != torch.float32)


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work, so that a host clock measures it (no-op on the CPU)."""
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def time_repeats(step: Callable[[], object], device: torch.device, warmup: int, iters: int,
                 repeats: int) -> List[float]:
    """Time ``step``: ``warmup`` untimed calls, then ``repeats`` blocks of ``iters`` calls.

    Each block is timed as a whole between two device synchronisations (a
    per-call synchronisation would add its own latency to every call).

    Args:
        step (Callable): One iteration of the work to time.
        device (torch.device): Where ``step`` runs; synchronised around each block.
        warmup (int): Untimed calls first (allocator, cuDNN autotuning, caches).
        iters (int): Calls per timed block.
        repeats (int): Number of timed blocks.

    Returns:
        list[float]: Each block's mean milliseconds per call.
    """
    for _ in range(warmup):
        step()
    block_ms = []
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        for _ in range(iters):
            step()
        synchronize(device)
        block_ms.append((time.perf_counter() - start) * 1000 / iters)
    return block_ms


def summarize_ms(block_ms: Sequence[float]) -> Dict[str, float]:
    """Median, min and max over the timed blocks."""
    return dict(ms_per_batch_median=statistics.median(block_ms), ms_per_batch_min=min(block_ms),
                ms_per_batch_max=max(block_ms))


_PROC_STATUS = '/proc/self/status'
_PROC_CLEAR_REFS = '/proc/self/clear_refs'


def _proc_status_kib(field: str) -> int:
    with open(_PROC_STATUS) as status:
        for line in status:
            if line.startswith(field + ':'):
                return int(line.split()[1])
    raise OSError(f'{field} not in {_PROC_STATUS}')


def _reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark of this process (Linux); False where that is impossible."""
    try:
        with open(_PROC_CLEAR_REFS, 'w') as clear_refs:
            clear_refs.write('5')  # '5' resets VmHWM to the current RSS (proc(5))
        _proc_status_kib('VmHWM')
        return True
    except OSError:
        return False


def _max_rss_kib() -> int:
    # ru_maxrss is in KiB on Linux, in bytes on macOS.
    max_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return max_rss // 1024 if sys.platform == 'darwin' else max_rss


def memory_measure(device: torch.device) -> str:
    """What :class:`PeakMemory` reports on ``device``, in words (for the report)."""
    if device.type == 'cuda':
        return 'CUDA: torch.cuda.max_memory_allocated (tensors: weights, inputs, activations; not the caching slack)'
    if _reset_peak_rss():
        return ('CPU: peak RSS growth over the RSS at the start of the measurement (model and inputs '
                'already resident), from /proc/self/status VmHWM reset per measurement')
    return ('CPU: growth of the process-lifetime peak RSS (getrusage ru_maxrss): a lower bound, '
            '0 when an earlier measurement peaked higher')


class PeakMemory:
    """Peak memory, in MiB, of the work done inside the ``with`` block; see :func:`memory_measure`.

    Args:
        device (torch.device): The device whose memory is tracked.
    """

    def __init__(self, device: torch.device):
        self.device = device
        self.mib: Optional[float] = None
        self._start_kib = 0
        self._use_proc = False

    def __enter__(self) -> 'PeakMemory':
        if self.device.type == 'cuda':
            synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
        else:
            self._use_proc = _reset_peak_rss()
            self._start_kib = _proc_status_kib('VmRSS') if self._use_proc else _max_rss_kib()
        return self

    def __exit__(self, *exc_info) -> None:
        if self.device.type == 'cuda':
            synchronize(self.device)
            self.mib = torch.cuda.max_memory_allocated(self.device) / 2**20
        else:
            peak_kib = _proc_status_kib('VmHWM') if self._use_proc else _max_rss_kib()
            self.mib = max(peak_kib - self._start_kib, 0) / 1024
