"""parnet_det and its tools use the public API of the stack: no private name of torch, mmengine, mmdet, mmcv,
mmpretrain, numpy or the runtimes (imported, reached through a module, or mmdet's private detector methods)."""
import ast
from pathlib import Path

import pytest
from torch.onnx import _constants

from parnet_det.deploy.onnx_export import ONNX_MAX_OPSET, ONNX_MIN_OPSET

ROOT = Path(__file__).resolve().parents[1]
THIRD_PARTY = {'torch', 'torchvision', 'mmengine', 'mmdet', 'mmcv', 'mmpretrain', 'numpy', 'onnx', 'onnxruntime',
               'openvino', 'nncf', 'pycocotools'}
# Private methods of mmdet's and mmengine's objects that have public forms (model(inputs, mode='tensor'), ...).
PRIVATE_METHODS = {'_forward', '_bbox_decode', '_load_checkpoint_to_model', '_run_forward', '_predict_by_feat_single'}
# The private names left, and why:
# - torch's weights-only loader keeps the allow-lists it refuses against private, and a legacy-format checkpoint
#   must be judged against those same lists (utils/checkpoint.py refused_globals);
# - numpy arrays are pickled under numpy._core.multiarray: that name is what the loader is told is safe;
# - _BatchNorm and _ConvNd are the base classes torch gives no public name; mmcv and mmdet test for them alike.
ALLOWED = {('parnet_det/utils/checkpoint.py', 'torch._weights_only_unpickler'),
           ('parnet_det/utils/checkpoint.py', 'numpy._core'),
           *((path, 'torch.nn.modules.batchnorm._BatchNorm') for path in (
               'parnet_det/analysis/folding.py', 'parnet_det/models/backbones/cspdarknet53s.py',
               'parnet_det/models/backbones/parnet.py', 'parnet_det/models/layers/csp_layers.py',
               'parnet_det/models/reparameterize.py')),
           ('parnet_det/engine/optimizers/yolov4_csp_optim_constructor.py', 'torch.nn.modules.conv._ConvNd')}


def private(name: str) -> bool:
    return any(part.startswith('_') and not part.startswith('__') for part in name.split('.'))


def private_uses(path: Path):
    tree = ast.parse(path.read_text())
    modules = {}  # local name -> third-party module path
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split('.')[0] in THIRD_PARTY:
                    modules[alias.asname or alias.name.split('.')[0]] = alias.name if alias.asname else \
                        alias.name.split('.')[0]
                    if private(alias.name):
                        yield alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split('.')[0] in THIRD_PARTY:
            for alias in node.names:
                full = f'{node.module}.{alias.name}'
                if private(full):
                    yield full
                modules[alias.asname or alias.name] = full
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            chain, value = [node.attr], node.value
            while isinstance(value, ast.Attribute):
                chain.append(value.attr)
                value = value.value
            if isinstance(value, ast.Name) and value.id in modules:
                full = '.'.join([modules[value.id], *reversed(chain)])
                if private(full):
                    yield full
            elif node.attr in PRIVATE_METHODS:
                yield f'<object>.{node.attr}'


SOURCES = sorted([*ROOT.glob('parnet_det/**/*.py'), *ROOT.glob('tools/**/*.py')])


@pytest.mark.parametrize('path', SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_private_third_party_name(path):
    relative = str(path.relative_to(ROOT))
    found = sorted({name for name in private_uses(path)
                    if not any(file == relative and name.startswith(allowed) for file, allowed in ALLOWED)})
    assert not found, f'{relative} uses private names of the stack: {found}'


def test_the_opset_bounds_are_torchs():
    # The exporter's opset range, kept as the project's constants, is the one torch itself checks against (the
    # private module is read here only, to check the copy).
    assert (ONNX_MIN_OPSET, ONNX_MAX_OPSET) == (_constants.ONNX_MIN_OPSET, _constants.ONNX_MAX_OPSET)


def test_the_check_finds_them(tmp_path):
    source = tmp_path / 'sample.py'
    source.write_text('import torch\nfrom torch.onnx._constants import ONNX_MAX_OPSET\n'
                      'from mmengine.runner.checkpoint import _load_checkpoint_to_model\n'
                      'torch._dynamo.reset()\nmodel._forward(x)\nself.head(x)\n')
    assert sorted(set(private_uses(source))) == [
        '<object>._forward', 'mmengine.runner.checkpoint._load_checkpoint_to_model', 'torch._dynamo',
        'torch._dynamo.reset', 'torch.onnx._constants.ONNX_MAX_OPSET']
