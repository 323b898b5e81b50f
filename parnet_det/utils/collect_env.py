"""Versions of the stack and the device, for bug reports and benchmark records."""
import os
import platform
import signal
import subprocess
import sys
from collections import OrderedDict
from importlib import metadata
from typing import List, Optional, Tuple

import torch

from ..version import __version__


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return 'not installed'


# torch first, as the tools import it, then one op the project runs, NMS, on the CPU and, where there
# is one, on the GPU.
_MMCV_OPS_PROBE = """
import torch
from mmcv.ops import nms
boxes = torch.tensor([[0., 0., 10., 10.], [1., 1., 11., 11.]])
scores = torch.tensor([0.9, 0.8])
nms(boxes, scores, 0.5)
print('CPU', flush=True)
if torch.cuda.is_available():
    nms(boxes.cuda(), scores.cuda(), 0.5)
    torch.cuda.synchronize()
    print('CUDA', flush=True)
"""

# mmcv's build queries: known to crash with some builds whose ops work (mmcv issue #1292).
_MMCV_BUILD_PROBE = """
import torch
from mmcv.ops import get_compiler_version, get_compiling_cuda_version
print(get_compiling_cuda_version()); print(get_compiler_version())
"""


def run_probe(code: str, timeout: float = 120) -> Tuple[List[str], Optional[str]]:
    """Run ``code`` in a child Python: whatever crashes there cannot take the asking process down.

    Returns:
        tuple[list[str], str | None]: The lines it printed, and how it failed
        (its last error line, the signal that killed it, or the time-out);
        None if it finished.
    """
    try:
        probe = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return [], f'timed out after {timeout:g} s'
    lines = probe.stdout.strip().splitlines()
    if probe.returncode < 0:
        return lines, f'crashed: {signal.Signals(-probe.returncode).name}'
    if probe.returncode != 0:
        return lines, (probe.stderr.strip().splitlines() or [f'exit code {probe.returncode}'])[-1]
    return lines, None


def mmcv_ops_info() -> str:
    """Whether mmcv's compiled ops run, on which devices, and how they were built.

    A probe that calls mmcv's build queries in a fresh interpreter importing
    ``mmcv.ops`` first (OpenCV's libraries before torch's) has been seen to
    die with SIGSEGV on a GPU machine whose ops all worked. So the child
    imports torch first, as the tools do, the verdict comes from running an
    op, and the build queries run in a child of their own: their crash costs
    only the build details.
    """
    devices, failure = run_probe(_MMCV_OPS_PROBE)
    if failure is not None:
        ran = f'; ran on {" and ".join(devices)}' if devices else ''
        return f'NOT usable ({failure}){ran}'
    where = 'CPU and CUDA' if 'CUDA' in devices else 'CPU only'
    build, failure = run_probe(_MMCV_BUILD_PROBE)
    if failure is not None:
        return f'usable ({where}; build details unavailable, the query {failure})'
    cuda, compiler = (build + ['', ''])[:2]
    built = 'without CUDA' if cuda in ('not available', '') else f'with CUDA {cuda}'
    return f'usable ({where}; built {built}, {compiler})'


def cpu_model() -> str:
    try:
        with open('/proc/cpuinfo') as f:
            return next(line.split(':', 1)[1].strip() for line in f if line.startswith('model name'))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def collect_env() -> 'OrderedDict[str, str]':
    env = OrderedDict()
    env['Python'] = sys.version.replace('\n', ' ')
    env['Platform'] = platform.platform()
    env['CPU'] = f'{cpu_model()}, {os.cpu_count()} cores'
    env['torch'] = torch.__version__
    env['torch CUDA'] = str(torch.version.cuda)
    env['torchvision'] = _version('torchvision')
    env['mmcv'] = _version('mmcv')
    env['mmcv ops'] = mmcv_ops_info()
    env['mmengine'] = _version('mmengine')
    env['mmdet'] = _version('mmdet')
    env['pycocotools'] = _version('pycocotools')
    env['numpy'] = _version('numpy')
    env['parnet_det'] = __version__
    if torch.cuda.is_available():
        env['Device'] = ', '.join(
            f'cuda:{i} {torch.cuda.get_device_name(i)}' for i in range(torch.cuda.device_count()))
    else:
        env['Device'] = f'CPU ({torch.get_num_threads()} threads), no CUDA device'
    return env
