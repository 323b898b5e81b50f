"""The ImageNet configs (configs/imagenet/): the paper's networks, the official weights' logits, folding."""
import glob
import os.path as osp

import pytest
import torch
from mmpretrain.models.heads import LinearClsHead

from parnet_det.apis import build_detector, load_config
from parnet_det.convert import convert_official
from parnet_det.models import switch_to_deploy
from parnet_det.models.classifiers import ParNetClassifier
from parnet_det.models.classifiers.dropout_linear_cls_head import DropoutLinearClsHead

from ..official_reference import make_official_state_dict

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = sorted(glob.glob(osp.join(ROOT, 'configs', 'imagenet', '*.py')))
# The configs' networks: arch, backbone type. Only S in the quick run (the others are 35-93M parameters).
NETWORKS = {'parnet_s_8xb128_in1k.py': ('s', 'ParNet'), 'parnet_m_8xb128_in1k.py': ('m', 'ParNet'),
            'parnet_l_8xb128_in1k.py': ('l', 'ParNet'), 'parnet_xl_8xb128_in1k.py': ('xl', 'ParNet'),
            'parnet_xl_4xb128_ft-16e_in1k-320px.py': ('xl', 'ParNet'),
            'parnet_xl_csp_8xb128_in1k.py': ('xl', 'ParNetCSP')}


def test_every_config_is_listed():
    assert sorted(NETWORKS) == [osp.basename(path) for path in CONFIGS]


@pytest.mark.parametrize('name', [pytest.param(name, marks=[] if name.startswith('parnet_s_') else pytest.mark.slow)
                                  for name in sorted(NETWORKS)])
def test_config_builds_the_classifier_with_the_official_layout(name):
    # Same names and shapes as ParNetClassifier: a converted official checkpoint loads into it strictly.
    arch, backbone_type = NETWORKS[name]
    model = build_detector(osp.join(ROOT, 'configs', 'imagenet', name))
    expected = ParNetClassifier(arch=arch, backbone_type=backbone_type).state_dict()
    assert {k: v.shape for k, v in model.state_dict().items()} == {k: v.shape for k, v in expected.items()}


# The release's model files: dropout_lin 0.1 for ParNet-L and XL, 0 for S and M; XL-CSP is trained as XL.
DROPOUT = {'parnet_s_8xb128_in1k.py': 0.0, 'parnet_m_8xb128_in1k.py': 0.0, 'parnet_l_8xb128_in1k.py': 0.1,
           'parnet_xl_8xb128_in1k.py': 0.1, 'parnet_xl_4xb128_ft-16e_in1k-320px.py': 0.1,
           'parnet_xl_csp_8xb128_in1k.py': 0.1}


@pytest.mark.parametrize('name', sorted(NETWORKS))
def test_dropout_before_the_classifier_is_the_releases(name):
    head = load_config(osp.join(ROOT, 'configs', 'imagenet', name)).model.head
    assert head.type == 'DropoutLinearClsHead' and head.dropout == DROPOUT[name]


def test_the_dropout_head_drops_features_in_training_only():
    """DropoutLinearClsHead: fc(dropout(x)); the dropout zeroes about its rate of the features in training, and
    nothing in evaluation, where it is mmpretrain's LinearClsHead with the same weights."""
    head = DropoutLinearClsHead(dropout=0.1, num_classes=3, in_channels=4000)
    plain = LinearClsHead(num_classes=3, in_channels=4000)
    plain.load_state_dict(head.state_dict(), strict=True)
    features = (torch.rand(2, 4000) + 1, )
    torch.manual_seed(0)
    dropped = (head.train().pre_logits(features) == 0).float().mean().item()
    assert 0.08 < dropped < 0.12
    with torch.no_grad():
        assert torch.equal(head.eval()(features), plain.eval()(features))


def test_recipe_and_official_eval_transform():
    cfg = load_config(osp.join(ROOT, 'configs', 'imagenet', 'parnet_xl_8xb128_in1k.py'))
    assert [step['type'] for step in cfg.test_dataloader.dataset.pipeline] == [
        'LoadImageFromFile', 'ResizeEdge', 'CenterCrop', 'PackInputs']
    assert (cfg.test_dataloader.dataset.pipeline[1].scale, cfg.test_dataloader.dataset.pipeline[2].crop_size) == (
        256, 224)  # crop_pct 0.875
    assert cfg.model.data_preprocessor.mean == [123.675, 116.28, 103.53]  # timm's IMAGENET_DEFAULT_MEAN * 255
    assert cfg.model.data_preprocessor.std == [58.395, 57.12, 57.375]
    assert cfg.optim_wrapper.optimizer == dict(type='SGD', lr=0.001, momentum=0.9, nesterov=True, weight_decay=1e-4)
    assert cfg.param_scheduler[0].T_max == 200 and cfg.train_cfg.max_epochs == 210
    assert cfg.model.head.loss == dict(type='LabelSmoothLoss', label_smooth_val=0.1, mode='original')
    assert cfg.custom_hooks[0].type == 'EMAHook' and cfg.custom_hooks[0].momentum == 1e-4


@pytest.fixture
def official_s_checkpoint(tmp_path):
    """An official-format ParNet-S checkpoint (random weights), converted as tools/convert_official_weights.py
    --form classifier writes it."""
    state_dict, _ = convert_official(make_official_state_dict('s'), form='classifier')
    path = str(tmp_path / 'parnet_s_converted.pth')
    torch.save(dict(state_dict=state_dict, meta=dict(form='classifier')), path)
    return path, state_dict


def test_converted_official_checkpoint_gives_the_classifiers_logits(official_s_checkpoint):
    path, state_dict = official_s_checkpoint
    model = build_detector(osp.join(ROOT, 'configs', 'imagenet', 'parnet_s_8xb128_in1k.py'), path)
    reference = ParNetClassifier(arch='s').eval()
    reference.load_state_dict(state_dict, strict=True)
    x = torch.randn(2, 3, 96, 128)
    with torch.no_grad():
        logits = model(x, mode='tensor')
        assert torch.equal(logits, reference(x))
        switch_to_deploy(model)  # folds for deploy like the detectors
        assert torch.allclose(model(x, mode='tensor'), logits, rtol=1e-4, atol=1e-4)



def _has_a_preset_parnet(path):
    backbone = load_config(path).model.backbone
    return backbone.type in ('ParNet', 'ParNetCSP') and isinstance(backbone.arch, str)


# Every detector config with a preset ParNet backbone (the demo's tiny one has no ImageNet config), and the
# ImageNet config whose checkpoint it starts from.
# The family folders' configs (the top-level entry points are the same configs).
DETECTOR_CONFIGS = [path for path in sorted(glob.glob(osp.join(ROOT, 'configs', '*', '*.py')))
                    if osp.basename(osp.dirname(path)) not in ('_base_', 'imagenet') and _has_a_preset_parnet(path)]
PRETRAIN_CONFIG = {(arch, backbone_type): name for name, (arch, backbone_type) in NETWORKS.items()
                   if 'ft-16e' not in name}


@pytest.fixture(scope='module')
def imagenet_checkpoints(tmp_path_factory):
    """ImageNet config name -> a checkpoint of its classifier as the Runner saves it (``state_dict``, ``meta``)."""
    made = {}

    def checkpoint(name):
        if name not in made:
            model = build_detector(osp.join(ROOT, 'configs', 'imagenet', name))
            made[name] = str(tmp_path_factory.mktemp('imagenet') / 'epoch_210.pth')
            torch.save(dict(meta=dict(epoch=210), state_dict=model.state_dict()), made[name])
        return made[name]
    return checkpoint


@pytest.mark.parametrize('path', [
    pytest.param(path, marks=[] if osp.basename(path) in ('yolox_parnet-s_reduced-pafpn_8xb8-300e_coco.py',
                                                         'yolox_parnet-xl-csp_reduced-pafpn_8xb8-300e_coco.py')
                 else pytest.mark.slow, id=osp.relpath(path, ROOT)) for path in DETECTOR_CONFIGS])
def test_imagenet_backbone_loads_into_every_parnet_detector(path, imagenet_checkpoints):
    cfg = load_config(path)
    backbone = cfg.model.backbone
    checkpoint = imagenet_checkpoints(PRETRAIN_CONFIG[(backbone.arch, backbone.type)])
    backbone.init_cfg = dict(type='Pretrained', prefix='backbone.', checkpoint=checkpoint)
    detector = build_detector(cfg)
    detector.backbone.init_weights()
    pretrained = {k[len('backbone.'):]: v for k, v in torch.load(checkpoint)['state_dict'].items()
                  if k.startswith('backbone.')}
    loaded = detector.backbone.state_dict()
    # Every tensor of the detector's backbone comes from the checkpoint (the classifier's final downsampling
    # is left over where the detector does not use stride 32).
    assert sorted(set(loaded) - set(pretrained)) == []
    assert all(torch.equal(loaded[k], pretrained[k]) for k in loaded)
    assert {k.split('.')[0] for k in set(pretrained) - set(loaded)} <= {'final_downsample'}
