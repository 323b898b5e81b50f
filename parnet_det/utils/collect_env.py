"""Versions of the stack and the device, for bug reports and benchmark records."""
import platform
import sys
from collections import OrderedDict
from importlib import metadata


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return 'not installed'


def mmcv_ops_info() -> str:
    """Whether mmcv's compiled ops load, and for which device."""
    try:
        from mmcv.ops import get_compiler_version, get_compiling_cuda_version
    except (ImportError, OSError) as err:
        return f'NOT compiled ({err.__class__.__name__}: {err})'
    cuda = get_compiling_cuda_version()
    kind = 'CPU only' if cuda in ('not available', '') else f'CUDA {cuda}'
    return f'compiled ({kind}; {get_compiler_version()})'


def collect_env() -> 'OrderedDict[str, str]':
    import torch
    env = OrderedDict()
    env['Python'] = sys.version.replace('\n', ' ')
    env['Platform'] = platform.platform()
    env['CPU'] = platform.processor() or platform.machine()
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
