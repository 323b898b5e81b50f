import os.path as osp
import subprocess
import sys

import pytest

import parnet_det

from .helpers import run_tool

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def _python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, cwd=ROOT, check=True)


def test_version():
    assert isinstance(parnet_det.__version__, str) and parnet_det.__version__.count('.') == 2


def test_import_prints_nothing():
    result = _python('import parnet_det')
    assert result.stdout == '' and result.stderr == ''


# mmpretrain (the ImageNet configs' optional dependency) and the pins only it brings, made unimportable: what a
# detection user who installed without the [imagenet] extra has.
WITHOUT_MMPRETRAIN = (
    'import sys\n'
    'class HideMmpretrain:\n'
    '    def find_spec(self, name, path=None, target=None):\n'
    "        if name.split('.')[0] in ('mmpretrain', 'mat4py', 'modelindex', 'model_index', 'einops'):\n"
    "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
    'sys.meta_path.insert(0, HideMmpretrain())\n')


def test_detection_imports_without_mmpretrain():
    # mmdet's own reid modules import mmpretrain where it is installed, so it must be hidden to see that
    # parnet_det neither imports nor needs it; every subpackage, not only the package, imports.
    result = _python(WITHOUT_MMPRETRAIN + 'import parnet_det, parnet_det.apis, parnet_det.benchmark\n'
                     "print(sorted(m for m in sys.modules if m.split('.')[0] in ('mmpretrain', 'einops')))\n")
    assert result.stdout.split() == ['[]']


def test_config_with_custom_imports_builds_a_parnet_detector():
    # A fresh interpreter: only the config's custom_imports can register ParNet.
    result = _python(
        'import sys\n'
        'from mmengine.config import Config\n'
        'from mmengine.registry import init_default_scope\n'
        'from mmdet.registry import MODELS\n'
        "assert 'parnet_det' not in sys.modules\n"
        "cfg = Config.fromfile('tests/data/configs/retinanet_parnet_tiny.py')\n"
        "init_default_scope('mmdet')\n"
        'model = MODELS.build(cfg.model)\n'
        'print(type(model).__name__, type(model.backbone).__module__, type(model.backbone).__name__)\n')
    assert result.stdout.split() == ['RetinaNet', 'parnet_det.models.backbones.parnet', 'ParNet']


def test_imagenet_config_registers_into_mmpretrain_through_its_custom_imports():
    # A fresh interpreter: `import parnet_det` leaves mmpretrain's registries alone; the ImageNet configs'
    # custom_imports (parnet_det.mmpretrain_registration) put the backbone and the tools' hooks there.
    result = _python(
        'from mmengine.config import Config\n'
        'import parnet_det\n'
        'from mmpretrain.registry import HOOKS, MODELS\n'
        "print('ParNet' in MODELS.module_dict)\n"
        "Config.fromfile('configs/imagenet/parnet_s_8xb128_in1k.py')\n"
        "print('ParNet' in MODELS.module_dict, 'ParNetCSP' in MODELS.module_dict,"
        " 'CrashSafeCheckpointHook' in HOOKS.module_dict)\n")
    assert result.stdout.split() == ['False', 'True', 'True', 'True']


@pytest.mark.slow
def test_collect_env_reports_the_stack(capsys):
    code, out, err = run_tool(capsys, 'collect_env.py')
    assert code == 0, err[-3000:]
    for name in ('Python', 'torch', 'torchvision', 'mmcv', 'mmcv ops', 'mmengine', 'mmdet', 'pycocotools', 'Device'):
        assert f'\n{name}: ' in '\n' + out, name
    assert 'mmcv ops: usable (CPU' in out


SEGFAULT = 'import os, signal; os.kill(os.getpid(), signal.SIGSEGV)'


def test_collect_env_names_a_crashing_ops_probe(monkeypatch):
    from parnet_det.utils import collect_env
    monkeypatch.setattr(collect_env, '_MMCV_OPS_PROBE', f"print('CPU', flush=True); {SEGFAULT}")
    assert collect_env.mmcv_ops_info() == 'NOT usable (crashed: SIGSEGV); ran on CPU'
    monkeypatch.setattr(collect_env, '_MMCV_OPS_PROBE', 'raise ImportError("libcudart.so.13: cannot open")')
    assert collect_env.mmcv_ops_info() == 'NOT usable (ImportError: libcudart.so.13: cannot open)'


def test_a_crashing_build_query_keeps_the_ops_verdict(monkeypatch):
    """What the H100 showed: ops run, mmcv's build queries die with signal 11."""
    from parnet_det.utils import collect_env
    monkeypatch.setattr(collect_env, '_MMCV_OPS_PROBE', "print('CPU'); print('CUDA')")
    monkeypatch.setattr(collect_env, '_MMCV_BUILD_PROBE', SEGFAULT)
    assert collect_env.mmcv_ops_info() == ('usable (CPU and CUDA; build details unavailable, '
                                           'the query crashed: SIGSEGV)')
    monkeypatch.setattr(collect_env, '_MMCV_BUILD_PROBE', "print('12.8'); print('GCC 13.3')")
    assert collect_env.mmcv_ops_info() == 'usable (CPU and CUDA; built with CUDA 12.8, GCC 13.3)'


def test_tools_filter_only_the_known_harmless_warnings():
    import warnings

    from parnet_det.utils.warnings_filter import filter_known_warnings
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        filter_known_warnings()
        warnings.warn('pkg_resources is deprecated as an API. See https://setuptools.pypa.io/', UserWarning)
        warnings.warn('torch.meshgrid: in an upcoming release, it will be required to pass the indexing argument.',
                      UserWarning)
        warnings.warn("__array__ implementation doesn't accept a copy keyword, so passing copy=False failed.",
                      DeprecationWarning)
        warnings.warn('checkpoint has no dataset_meta', UserWarning)
    assert [str(w.message) for w in caught] == ['checkpoint has no dataset_meta']
