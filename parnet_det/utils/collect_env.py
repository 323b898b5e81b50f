"""Versions of the stack and the device, for bug reports and benchmark records."""
import os
import platform
import subprocess
import sys
from collections import OrderedDict
from importlib import metadata


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return 'not installed'


_MMCV_OPS_PROBE = ('from mmcv.ops import get_compiler_version, get_compiling_cuda_version\n'
                   'print(get_compiling_cuda_version()); print(get_compiler_version())')


def mmcv_ops_info() -> str:
    """Whether mmcv's compiled ops load, and for which device.

    Asked in a child process: on the lent H100 machine (2026-11-26, its
    prebuilt mmcv) collecting the environment killed the interpreter with a
    segmentation fault before anything was printed, most likely in these
    queries of the compiled extension; a report must not take down the run
    that asks for it.
    """
    try:
        probe = subprocess.run([sys.executable, '-c', _MMCV_OPS_PROBE], capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        return 'unknown (probe timed out)'
    if probe.returncode != 0:
        last_line = (probe.stderr.strip().splitlines() or [f'exit code {probe.returncode}'])[-1]
        return f'NOT usable ({last_line})'
    cuda, compiler = (probe.stdout.strip().splitlines() + ['', ''])[:2]
    kind = 'CPU only' if cuda in ('not available', '') else f'CUDA {cuda}'
    return f'compiled ({kind}; {compiler})'


def cpu_model() -> str:
    try:
        with open('/proc/cpuinfo') as f:
            return next(line.split(':', 1)[1].strip() for line in f if line.startswith('model name'))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def collect_env() -> 'OrderedDict[str, str]':
    import torch
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
    from parnet_det import __version__
    env['parnet_det'] = __version__
    if torch.cuda.is_available():
        env['Device'] = ', '.join(
            f'cuda:{i} {torch.cuda.get_device_name(i)}' for i in range(torch.cuda.device_count()))
    else:
        env['Device'] = f'CPU ({torch.get_num_threads()} threads), no CUDA device'
    return env
