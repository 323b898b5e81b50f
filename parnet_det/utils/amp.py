"""A config's optimizer wrapper in its AMP or its fp32 form, and AMP only where mmengine can build it.

The training tools and the benchmark's training step both switch a config between the two forms.
"""
import logging

from mmengine.config import Config
from mmengine.device import is_cuda_available, is_mlu_available, is_musa_available, is_npu_available
from mmengine.logging import print_log

# The fp32 wrapper of each AMP wrapper a config may name.
FP32_OF_AMP_WRAPPER = {'AmpOptimWrapper': 'OptimWrapper', 'NominalBatchAmpOptimWrapper': 'NominalBatchOptimWrapper'}
AMP_OF_FP32_WRAPPER = {fp32: amp for amp, fp32 in FP32_OF_AMP_WRAPPER.items()}


def amp_available() -> bool:
    """Whether mmengine's ``AmpOptimWrapper`` can be built here: the devices its constructor asserts."""
    return is_cuda_available() or is_npu_available() or is_mlu_available() or is_musa_available()


def use_amp(cfg: Config) -> Config:
    """``optim_wrapper`` -> its AMP form with a dynamic loss scale (tools/train.py ``--amp``).

    Raises:
        ValueError: The config's wrapper has no AMP form here.
    """
    optim_wrapper = cfg.optim_wrapper.get('type', 'OptimWrapper')
    if optim_wrapper not in FP32_OF_AMP_WRAPPER and optim_wrapper not in AMP_OF_FP32_WRAPPER:
        raise ValueError(f'--amp needs one of {sorted([*FP32_OF_AMP_WRAPPER, *AMP_OF_FP32_WRAPPER])}, the config '
                         f'uses {optim_wrapper}')
    cfg.optim_wrapper.type = AMP_OF_FP32_WRAPPER.get(optim_wrapper, optim_wrapper)
    cfg.optim_wrapper.loss_scale = 'dynamic'
    return cfg


def use_fp32(cfg: Config) -> Config:
    """``optim_wrapper`` -> its fp32 form (mmengine's ``OptimWrapper``), without the AMP-only keys."""
    cfg.optim_wrapper.type = FP32_OF_AMP_WRAPPER.get(cfg.optim_wrapper.get('type'), 'OptimWrapper')
    for key in ('loss_scale', 'dtype', 'use_fsdp'):
        cfg.optim_wrapper.pop(key, None)
    return cfg


def use_amp_where_available(cfg: Config) -> Config:
    """Train an ``AmpOptimWrapper`` config with a plain ``OptimWrapper`` where AMP cannot run (one log line).

    mmengine's ``AmpOptimWrapper`` asserts a CUDA (NPU, MLU, MUSA) device when it
    is built, so on a CPU-only machine the YOLOv4-CSP configs (AMP by default, as
    the recipe) would not train at all; they train in fp32 there instead.
    """
    optim_wrapper = cfg.get('optim_wrapper')
    if not optim_wrapper or optim_wrapper.get('type') not in FP32_OF_AMP_WRAPPER or amp_available():
        return cfg
    print_log(f'no CUDA device: AMP is off, training in fp32 with {FP32_OF_AMP_WRAPPER[optim_wrapper.type]} instead '
              f'of {optim_wrapper.type}', logger='current', level=logging.WARNING)
    return use_fp32(cfg)
