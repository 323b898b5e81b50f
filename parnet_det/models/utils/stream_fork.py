"""Run independent branches of a network at the same time, on side CUDA streams.

Eager PyTorch queues every kernel on one CUDA stream, so branches that do not
depend on each other still run one after another; at small batches each
kernel leaves most of the GPU idle. Queued on different streams, their
kernels can overlap. A :class:`StreamFork` holds the bookkeeping this needs:

- a side stream starts only after the work that produced its inputs
  (``side.wait_stream(current)``);
- a consumer waits for the side stream that produced what it reads
  (:meth:`StreamFork.join`);
- every tensor read on a stream other than the one that allocated it is
  recorded on the reading stream (``Tensor.record_stream``), so the caching
  allocator does not hand its memory out again while that stream may still
  read it.

The same code runs sequentially when the fork is disabled (a CPU input, or
``enabled=False``): every context is then a no-op, so the two forms run the
same operations in the same order per branch and give identical outputs.
CUDA-graph capture records the fork and join as graph dependencies.
"""
from contextlib import contextmanager
from typing import Iterator, List

import torch


class StreamFork:
    """Side CUDA streams for ``num_branches`` branches forked from the current stream.

    Example::

        fork = StreamFork(x.device, num_branches=2, enabled=True)
        with fork.branch(0, x):          # queued on side stream 0
            a = branch_a(x)
        b = main_path(x)                 # queued on the current stream meanwhile
        fork.join(0, a)                  # the current stream waits for branch 0
        out = merge(a, b)

    Args:
        device (torch.device): Device of the inputs. Only a CUDA device forks;
            on any other the fork is disabled.
        num_branches (int): Number of side streams.
        enabled (bool): False runs every branch inline on the current stream.
            Defaults to True.
    """

    def __init__(self, device: torch.device, num_branches: int, enabled: bool = True) -> None:
        self.enabled = enabled and device.type == 'cuda'
        # torch.cuda.Stream() hands out streams from a per-device pool: cheap to ask for on every call.
        self._streams: List[torch.cuda.Stream] = (
            [torch.cuda.Stream(device=device) for _ in range(num_branches)] if self.enabled else [])

    @contextmanager
    def branch(self, index: int, *inputs: torch.Tensor) -> Iterator[None]:
        """Queue the block's work on side stream ``index``, after the current stream's work so far.

        Args:
            index (int): The branch.
            *inputs (Tensor): Tensors the branch reads that another stream allocated.
        """
        if not self.enabled:
            yield
            return
        side = self._streams[index]
        side.wait_stream(torch.cuda.current_stream(side.device))
        for tensor in inputs:
            tensor.record_stream(side)
        with torch.cuda.stream(side):
            yield

    def join(self, index: int, *outputs: torch.Tensor) -> None:
        """Make the current stream wait for branch ``index``, whose ``outputs`` it will read.

        Args:
            index (int): The branch.
            *outputs (Tensor): Tensors of the branch that the current stream reads.
        """
        if not self.enabled:
            return
        current = torch.cuda.current_stream(self._streams[index].device)
        current.wait_stream(self._streams[index])
        for tensor in outputs:
            tensor.record_stream(current)

