"""Device-agnostic timing primitives: precision, repeated timing, peak memory.

Nothing here knows about detectors; :mod:`.variants` says what is timed.
"""
import math
import statistics
import time
from contextlib import nullcontext
from typing import Callable, ContextManager, Dict, List, Optional, Sequence

import torch

from ..inference.fast_paths import PRECISION_DTYPES
from ..utils.collect_env import cpu_model
from ..utils.device import check_device


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


def autocast(device: torch.device, precision: str):
    """``torch.autocast`` for ``precision``; a disabled one (plain fp32) for 'fp32'."""
    dtype = PRECISION_DTYPES[precision]
    return torch.autocast(device_type=device.type, dtype=dtype, enabled=dtype != torch.float32)


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work, so that a host clock measures it (no-op on the CPU)."""
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


class BlockTimer:
    """One step timed in blocks, so that the blocks of several steps can alternate (see :func:`interleave`).

    :meth:`warm_up` runs the untimed calls and fixes the block size: at least
    ``min_iters`` calls and, from the time of a first timed block, enough calls
    to last ``min_block_s``. Each :meth:`time_block` then runs whole blocks of
    that size until ``min_block_s`` has passed (a step that got faster than the
    estimate adds blocks; the minimum holds) and returns the mean ms per call.
    The device is synchronised around a block, not per call (that would add
    its own latency to every call). ``torch.utils.benchmark.Timer`` is not used:
    its ``blocked_autorange`` times one statement until its own budget is spent,
    and alternating the blocks of two models needs the block size fixed first.

    Args:
        step (Callable): One call of the work to time.
        device (torch.device): Where ``step`` runs.
        context (Callable): Makes the context every run of calls is in (e.g. autocast); none by default.
        clock (Callable): Seconds, monotonic (``time.perf_counter``; a fake one in tests).
    """

    def __init__(self, step: Callable[[], object], device: torch.device,
                 context: Callable[[], ContextManager] = nullcontext, clock: Callable[[], float] = time.perf_counter):
        self.step, self.device, self.context, self.clock = step, device, context, clock
        self.iters, self.min_block_s = 1, 0.0

    def _run(self, calls: int) -> float:
        with self.context():
            synchronize(self.device)
            start = self.clock()
            for _ in range(calls):
                self.step()
            synchronize(self.device)
            return self.clock() - start

    def warm_up(self, warmup: int, min_iters: int, min_block_s: float) -> None:
        """``warmup`` untimed calls (at least one with a minimum block time: the block size is estimated from a
        warm call), then the block size."""
        with self.context():
            for _ in range(max(warmup, 1) if min_block_s > 0 else warmup):
                self.step()
        self.iters, self.min_block_s = min_iters, min_block_s
        if min_block_s > 0:
            seconds_per_call = self._run(min_iters) / min_iters
            self.iters = max(min_iters, math.ceil(min_block_s / max(seconds_per_call, 1e-9)))

    def time_block(self) -> float:
        """One timed block; its mean milliseconds per call."""
        calls, elapsed = 0, 0.0
        while calls == 0 or elapsed < self.min_block_s:
            elapsed += self._run(self.iters)
            calls += self.iters
        return elapsed * 1000 / calls


class BlockFailed(Exception):
    """Raised by an :func:`interleave` ``run_block`` to drop its timer (the caller kept the failure)."""


def interleave(timers: Sequence[BlockTimer], repeats: int,
               run_block: Optional[Callable[[int, BlockTimer], None]] = None) -> List[List[float]]:
    """``repeats`` rounds of one block per timer, in order (A B A B ...): a drift of the machine's speed
    (another process, the clock, the temperature) hits every step alike.

    Args:
        timers (Sequence[BlockTimer]): Warmed up (:meth:`BlockTimer.warm_up`).
        repeats (int): Rounds.
        run_block (Callable, optional): Called as ``run_block(index, timer)`` instead of
            ``timer.time_block()``, returning its ms per call or raising to drop that timer from the
            remaining rounds (its list then stops short).

    Returns:
        list[list[float]]: Per timer, each of its blocks' mean ms per call.
    """
    block_ms: List[List[float]] = [[] for _ in timers]
    dropped = set()
    for _ in range(repeats):
        for index, timer in enumerate(timers):
            if index in dropped:
                continue
            try:
                block_ms[index].append(timer.time_block() if run_block is None else run_block(index, timer))
            except BlockFailed:
                dropped.add(index)
    return block_ms


def summarize_ms(block_ms: Sequence[float]) -> Dict[str, float]:
    """Median, min and max over the timed blocks."""
    return dict(ms_per_batch_median=statistics.median(block_ms), ms_per_batch_min=min(block_ms),
                ms_per_batch_max=max(block_ms))


def memory_measure(device: torch.device) -> str:
    """What :class:`PeakMemory` reports on ``device``, in words (for the report)."""
    if device.type == 'cuda':
        return ('CUDA: the weights of the model as it runs plus the peak that its step allocates above what was '
                'allocated before (torch.cuda.max_memory_allocated; not the caching slack)')
    return ('CPU: n/a (not measured: the process holds every model of the comparison at once, so its RSS says '
            'nothing about one of them)')


class PeakMemory:
    """Peak memory, in MiB, of the work done inside the ``with`` block on a CUDA device, above what was
    allocated when it began, plus ``resident_bytes`` (the weights the work runs with); None (n/a) on the CPU.

    Args:
        device (torch.device): The device whose memory is tracked.
        resident_bytes (int): Added to the peak: the weights of the model that runs.
    """

    def __init__(self, device: torch.device, resident_bytes: int = 0):
        self.device, self.resident_bytes = device, resident_bytes
        self.mib: Optional[float] = None
        self._start = 0

    def __enter__(self) -> 'PeakMemory':
        if self.device.type == 'cuda':
            synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self._start = torch.cuda.memory_allocated(self.device)
        return self

    def __exit__(self, *exc_info) -> None:
        if self.device.type == 'cuda':
            synchronize(self.device)
            peak = torch.cuda.max_memory_allocated(self.device) - self._start
            self.mib = (peak + self.resident_bytes) / 2**20


def module_bytes(module: torch.nn.Module) -> int:
    """Bytes of a module's parameters and buffers."""
    return sum(t.numel() * t.element_size() for t in (*module.parameters(), *module.buffers()))
