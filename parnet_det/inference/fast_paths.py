"""Inference fast paths: which ones exist, how they are named, and what each device can run."""
from dataclasses import dataclass
from typing import Dict, Optional

import torch

# Precision name -> the dtype the network is cast to.
PRECISION_DTYPES: Dict[str, torch.dtype] = {'fp32': torch.float32, 'fp16': torch.float16, 'bf16': torch.bfloat16}

# torch.compile modes that capture CUDA graphs of their own (not to be nested in ours).
COMPILE_MODES_WITH_CUDA_GRAPHS = ('reduce-overhead', 'max-autotune')

# Short names of the fast paths, as `tools/benchmark.py --variants` joins them with '+', and the options each
# sets. max_autotune leaves the CUDA graphs to ``cuda_graph`` (max_autotune+cuda_graph: torch.compile's
# max-autotune kernels captured in our graph).
FAST_PATH_NAMES = {
    'streams': dict(parallel_streams=True),
    'channels_last': dict(channels_last=True),
    'compile': dict(compile=True),
    'max_autotune': dict(compile=True, compile_mode='max-autotune-no-cudagraphs'),
    'cuda_graph': dict(cuda_graph=True),
}


def check_precision(device: torch.device, precision: str) -> None:
    """Refuse a precision that is unknown or that ``device`` cannot run meaningfully.

    Args:
        device (torch.device): Where the network runs.
        precision (str): A name from :data:`PRECISION_DTYPES`.
    """
    if precision not in PRECISION_DTYPES:
        raise ValueError(f'unknown precision {precision!r}; choose from {", ".join(PRECISION_DTYPES)}')
    if device.type == 'cpu' and precision == 'fp16':
        raise ValueError('fp16 needs a CUDA device: CPUs lack fp16 arithmetic, so fp16 there runs a conversion path '
                         'that no CPU deployment would use; use bf16 on the CPU')
    if device.type == 'cuda' and precision == 'bf16' and not torch.cuda.is_bf16_supported():
        raise ValueError(f'bf16: {torch.cuda.get_device_name(device)} does not support bfloat16')



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
        """Options from a '+'-joined list of fast-path names.

        Args:
            variant (str): E.g. 'streams+cuda_graph'; 'eager' for none (see :data:`FAST_PATH_NAMES`).
            precision (str): As the field. Defaults to 'fp32'.
        """
        enabled = {}
        for name in variant.split('+'):
            if not name:
                raise ValueError(f'empty fast-path name in variant {variant!r}; join names with single + signs, '
                                 "e.g. 'streams+cuda_graph'")
            if name == 'eager':
                continue
            if name not in FAST_PATH_NAMES:
                raise ValueError(f'unknown fast path {name!r} in {variant!r}; '
                                 f'choose from eager, {", ".join(FAST_PATH_NAMES)} (joined with +)')
            enabled.update(FAST_PATH_NAMES[name])
        return cls(precision=precision, **enabled)

    @property
    def dtype(self) -> torch.dtype:
        return PRECISION_DTYPES[self.precision]

    def check(self, device: torch.device) -> None:
        """Refuse options that are unknown or that cannot run on ``device``, naming the fix.

        Args:
            device (torch.device): Where the engine runs.
        """
        check_precision(device, self.precision)
        if self.cuda_graph and device.type != 'cuda':
            raise ValueError(f'cuda_graph needs a CUDA device, not {device}; drop it on the CPU')
        if self.cuda_graph and self.compile_mode in COMPILE_MODES_WITH_CUDA_GRAPHS:
            raise ValueError(f"compile_mode {self.compile_mode!r} captures CUDA graphs itself; with cuda_graph "
                             "use the default mode or 'max-autotune-no-cudagraphs'")

