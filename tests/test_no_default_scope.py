"""The package builds as a user's plain script builds it: no default scope, or any scope (issue 17)."""
import os.path as osp
import subprocess
import sys

import pytest
from mmcv.cnn import build_activation_layer
from mmengine.registry import MODELS as ROOT_MODELS
from mmengine.registry import DefaultScope, Registry, init_default_scope

from parnet_det.models.backbones import CSPDarknet53s

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))

# A fresh interpreter, nothing but imports: every public module of the package, the detector of every
# kind of config (through the public build function), the demo's backbone table.
BARE_SCRIPT = '''
import torch
from mmengine.registry import DefaultScope
from parnet_det.analysis.summary import backbone_summary_rows
from parnet_det.apis import build_detector
from parnet_det.models import CSPDarknet53s, ParNet, ParNetClassifier, ParNetCSP, ReducedYOLOXPAFPN
assert DefaultScope.get_current_instance() is None
tiny = dict(stream_channels=(16, 32, 64), final_channels=128, num_blocks=(1, 2, 2))
x = torch.rand(1, 3, 64, 64)
outputs = {
    'CSPDarknet53s': CSPDarknet53s()(x),
    'CSPDarknet53s-small': CSPDarknet53s(widen_factor=0.25, deepen_factor=0.34)(x),
    'ParNet': ParNet(arch=tiny)(x),
    'ParNetCSP': ParNetCSP(arch=tiny)(x),
    'ParNetClassifier': (ParNetClassifier(arch=tiny)(x),),
}
neck = ReducedYOLOXPAFPN(in_channels=[32, 64, 128], reduced_channels=[16, 32, 64], out_channels=16)
outputs['ReducedYOLOXPAFPN'] = neck([torch.rand(1, c, 8 >> i, 8 >> i) for i, c in enumerate((32, 64, 128))])
for config in CONFIGS:
    build_detector(config)
rows = backbone_summary_rows(resolutions=(64,))
print(sorted(outputs), len(CONFIGS), [row['model'] for row in rows][-1])
'''
CONFIGS = ['configs/demo/yolo_cspdarknet53s_tiny_synthetic.py', 'configs/demo/yolo_parnet_tiny_synthetic.py',
           'tests/data/configs/retinanet_parnet_tiny.py']


@pytest.mark.slow
def test_every_public_module_builds_from_a_bare_script():
    script = f'CONFIGS = {CONFIGS!r}\n' + BARE_SCRIPT
    result = subprocess.run([sys.executable, '-c', script], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split('\n')[0] == (
        "['CSPDarknet53s', 'CSPDarknet53s-small', 'ParNet', 'ParNetCSP', 'ParNetClassifier', 'ReducedYOLOXPAFPN'] "
        "3 CSPDarknet53s (backbone only)")


def test_tests_start_without_a_default_scope():
    # The autouse fixture of conftest.py: without it, this class of failure hid behind mmdet's scope.
    assert DefaultScope.get_current_instance() is None


@pytest.mark.parametrize('scope', [None, 'mmdet', 'mmengine', 'a_downstream_project'])
def test_mish_builds_under_every_scope(scope):
    if scope == 'a_downstream_project':
        # What a project on top of mmengine (not mmdet) has: its own registry under mmengine's root.
        Registry('model', parent=ROOT_MODELS, scope=scope)
    if scope is not None:
        init_default_scope(scope)
    assert type(build_activation_layer(dict(type='Mish'))).__name__ == 'Mish'
    assert CSPDarknet53s(widen_factor=0.125, deepen_factor=0.25, out_indices=(1,)).out_channels == [16]
