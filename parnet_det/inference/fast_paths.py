"""Inference fast paths: which ones exist, how they are named, and CUDA-graph capture."""
from dataclasses import dataclass, fields
from typing import Any, Callable, Dict, Optional, Tuple

import torch

# Precision name -> the dtype the network is cast to.
PRECISION_DTYPES: Dict[str, torch.dtype] = {'fp32': torch.float32, 'fp16': torch.float16, 'bf16': torch.bfloat16}

# Short names of the fast paths, as `tools/benchmark.py --variants` joins them with '+'.
FAST_PATH_NAMES = {
    'streams': 'parallel_streams',
    'channels_last': 'channels_last',
    'compile': 'compile',
    'cuda_graph': 'cuda_graph',
}


@dataclass(frozen=True)
class InferenceOptions:
    """How the inference engine runs the network.

    Args:
        precision (str): 'fp32', 'fp16' or 'bf16': the network's weights and
            input are cast to it (box decoding and NMS stay fp32). fp16 needs
            CUDA. Defaults to 'fp32'.
        parallel_streams (bool): Run ParNet's three streams on separate CUDA
            streams (a no-op on the CPU). Defaults to False.
        channels_last (bool): NHWC memory format for weights and activations.
            Defaults to False.
        compile (bool): ``torch.compile`` the network (with decoding, for YOLOX
            heads) for the fixed input shape. Defaults to False.
        compile_mode (str, optional): ``torch.compile``'s ``mode``, e.g.
            'max-autotune-no-cudagraphs'. Defaults to None (its default).
        cuda_graph (bool): Capture the network (with decoding) in a CUDA graph
            per input shape and replay it. CUDA only. Defaults to False.
    """
    precision: str = 'fp32'
    parallel_streams: bool = False
    channels_last: bool = False
    compile: bool = False
    compile_mode: Optional[str] = None
    cuda_graph: bool = False

    @classmethod
    def from_variant(cls, variant: str, precision: str = 'fp32') -> 'InferenceOptions':
        """Options from a '+'-joined list of fast-path names, e.g. 'streams+cuda_graph'; 'eager' for none."""
        enabled = {}
        for name in filter(None, variant.split('+')):
            if name == 'eager':
                continue
            if name not in FAST_PATH_NAMES:
                raise ValueError(f'unknown fast path {name!r} in {variant!r}; '
                                 f'choose from eager, {", ".join(FAST_PATH_NAMES)} (joined with +)')
            enabled[FAST_PATH_NAMES[name]] = True
        return cls(precision=precision, **enabled)

    @property
    def dtype(self) -> torch.dtype:
        return PRECISION_DTYPES[self.precision]

    def check(self, device: torch.device) -> None:
        """Refuse options that are unknown or that cannot run on ``device``, naming the fix."""
        if self.precision not in PRECISION_DTYPES:
            raise ValueError(f'unknown precision {self.precision!r}; choose from {", ".join(PRECISION_DTYPES)}')
        if device.type == 'cpu' and self.precision == 'fp16':
            raise ValueError('fp16 inference needs a CUDA device (CPUs lack fp16 arithmetic); use bf16 on the CPU')
        if self.cuda_graph and device.type != 'cuda':
            raise ValueError(f'cuda_graph needs a CUDA device, not {device}; drop it on the CPU')

    def describe(self) -> str:
        """The enabled fast paths joined with '+', 'eager' for none (the inverse of :meth:`from_variant`)."""
        names = [short for short, field in FAST_PATH_NAMES.items() if getattr(self, field)]
        return '+'.join(names) or 'eager'

    def as_dict(self) -> Dict[str, Any]:
        return {field.name: getattr(self, field.name) for field in fields(self)}


class CUDAGraphRunner:
    """Replay a module's forward from CUDA graphs, one captured per input shape and dtype.

    A graph replays the captured kernels with one launch, which removes the
    per-kernel launch cost that dominates small batches. Capture needs static
    memory: each input is copied into the graph's input buffer, and the
    returned tensors are the graph's output buffers, overwritten by the next
    call (consume or clone them before calling again).

    Args:
        module (Callable): The forward to capture; must be free of host
            synchronisation and of shape-dependent Python control flow.
        warmup (int): Eager calls on a side stream before capture (cuDNN
            autotuning, lazy initialisation). Defaults to 3.
    """

    def __init__(self, module: Callable[[torch.Tensor], Any], warmup: int = 3) -> None:
        self.module = module
        self.warmup = warmup
        self._graphs: Dict[Tuple, Tuple[torch.cuda.CUDAGraph, torch.Tensor, Any]] = {}

    def _capture(self, inputs: torch.Tensor) -> Tuple[torch.cuda.CUDAGraph, torch.Tensor, Any]:
        static_inputs = inputs.clone()
        side = torch.cuda.Stream(device=inputs.device)
        side.wait_stream(torch.cuda.current_stream(inputs.device))
        with torch.cuda.stream(side):
            for _ in range(self.warmup):
                self.module(static_inputs)
        torch.cuda.current_stream(inputs.device).wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            static_outputs = self.module(static_inputs)
        return graph, static_inputs, static_outputs

    def __call__(self, inputs: torch.Tensor) -> Any:
        key = (tuple(inputs.shape), inputs.dtype, inputs.device, inputs.stride())
        if key not in self._graphs:
            self._graphs[key] = self._capture(inputs)
        graph, static_inputs, static_outputs = self._graphs[key]
        static_inputs.copy_(inputs)
        graph.replay()
        return static_outputs
