import math

import pytest
import torch

from mmdet.registry import MODELS

from parnet_det.analysis import measure_depth
from parnet_det.deploy import switch_to_deploy
from parnet_det.models.backbones import ARCH_SETTINGS, ParNet, ParNetCSP
from parnet_det.models.classifiers import ParNetClassifier

from ..helpers import randomize_norm_stats, relative_error

STRIDES = (4, 8, 16, 32)
# Official release, 1x1 folded into 3x3, 1000-class head.
OFFICIAL_DEPLOY_PARAMS = {'s': 19.129e6, 'm': 35.577e6, 'l': 54.915e6, 'xl': 84.963e6}


@pytest.mark.parametrize('backbone_type', ['ParNet', 'ParNetCSP'])
@pytest.mark.parametrize('arch', sorted(ARCH_SETTINGS))
@pytest.mark.parametrize('size', [(32, 32), (200, 328)])
def test_output_shapes(backbone_type, arch, size):
    backbone = MODELS.build(dict(type=backbone_type, arch=arch, out_indices=(0, 1, 2, 3))).eval()
    with torch.no_grad():
        outs = backbone(torch.zeros(1, 3, *size))
    preset = ARCH_SETTINGS[arch]
    channels = (*preset['stream_channels'], preset['final_channels'])
    assert backbone.out_channels == list(channels)
    for out, stride, width in zip(outs, STRIDES, channels):
        assert out.shape == (1, width, math.ceil(size[0] / stride), math.ceil(size[1] / stride))


@pytest.mark.parametrize('arch', sorted(ARCH_SETTINGS))
def test_deploy_parameter_count_matches_official_release(arch):
    count = sum(p.numel() for p in ParNetClassifier(arch=arch, deploy=True).parameters())
    assert abs(count - OFFICIAL_DEPLOY_PARAMS[arch]) / OFFICIAL_DEPLOY_PARAMS[arch] <= 1e-3, count
    folded = ParNetClassifier(arch=arch)
    switch_to_deploy(folded)
    assert sum(p.numel() for p in folded.parameters()) == count


def test_csp_variant_is_cheaper_than_parnet():
    def params(cls):
        return sum(p.numel() for p in cls(arch='xl', out_indices=(3,)).parameters())

    assert params(ParNetCSP) < 0.8 * params(ParNet)


@pytest.mark.parametrize('backbone_type', ['ParNet', 'ParNetCSP'])
def test_classifier_depth_is_12(backbone_type):
    model = ParNetClassifier(arch='s', backbone_type=backbone_type)
    assert measure_depth(model, (1, 3, 64, 64)) == 12
    switch_to_deploy(model)
    assert measure_depth(model, (1, 3, 64, 64)) == 12


def _train_steps(model, steps=3, size=(64, 96)):
    """Move BN running statistics away from their initial values with real forward passes."""
    model.train()
    with torch.no_grad():
        for _ in range(steps):
            model(torch.randn(2, 3, *size))


@pytest.mark.parametrize('backbone_type', ['ParNet', 'ParNetCSP'])
def test_whole_backbone_folds_exactly_at_odd_sizes(backbone_type):
    torch.manual_seed(0)
    backbone = MODELS.build(dict(type=backbone_type, arch='s', out_indices=(0, 1, 2, 3)))
    randomize_norm_stats(backbone)
    _train_steps(backbone)
    backbone.eval()
    x = torch.randn(1, 3, 200, 328)  # 25 x 41 at stride 8: odd at stride 8 and 16
    with torch.no_grad():
        expected = backbone(x)
        assert switch_to_deploy(backbone) > 0
        assert backbone.deploy
        actual = backbone(x)
    for a, e in zip(actual, expected):
        assert relative_error(a, e) <= 1e-5


def test_deploy_built_backbone_loads_reparameterized_state_dict():
    torch.manual_seed(0)
    backbone = ParNet(arch='s', out_indices=(1, 2, 3))
    randomize_norm_stats(backbone)
    backbone.eval()
    x = torch.randn(1, 3, 96, 64)
    with torch.no_grad():
        expected = backbone(x)
    switch_to_deploy(backbone)
    built = ParNet(arch='s', out_indices=(1, 2, 3), deploy=True).eval()
    built.load_state_dict(backbone.state_dict(), strict=True)
    with torch.no_grad():
        for a, e in zip(built(x), expected):
            assert relative_error(a, e) <= 1e-5


def test_gradients_reach_the_first_layer(tiny_arch):
    backbone = ParNet(arch=tiny_arch, out_indices=(1, 2, 3))
    sum(out.mean() for out in backbone(torch.randn(2, 3, 64, 64))).backward()
    grad = backbone.stem[0].conv3x3.conv.weight.grad
    assert grad is not None and grad.abs().sum() > 0


def test_gradient_checkpointing_gives_the_same_gradients(tiny_arch):
    torch.manual_seed(0)
    plain = ParNet(arch=tiny_arch)
    checkpointed = ParNet(arch=tiny_arch, with_cp=True)
    checkpointed.load_state_dict(plain.state_dict())
    x = torch.randn(2, 3, 64, 64)
    for model in (plain, checkpointed):
        sum(out.square().mean() for out in model(x)).backward()
    for (name, p1), p2 in zip(plain.named_parameters(), checkpointed.parameters()):
        assert torch.allclose(p1.grad, p2.grad, atol=1e-6), name


def test_frozen_stages_stay_frozen(tiny_arch):
    torch.manual_seed(0)
    backbone = ParNet(arch=tiny_arch, frozen_stages=2, out_indices=(1, 2, 3))
    backbone.train()
    frozen = [backbone.stem, backbone.streams[0], backbone.stream_entries[0], backbone.streams[1],
              backbone.stream1_downsample]
    before = {id(m): {k: v.clone() for k, v in m.state_dict().items()} for m in frozen}
    trainable_before = backbone.fusions[1].block.se_gate.weight.clone()
    optimizer = torch.optim.SGD([p for p in backbone.parameters() if p.requires_grad], lr=0.1)
    for _ in range(2):
        optimizer.zero_grad()
        sum(out.mean() for out in backbone(torch.randn(2, 3, 64, 64))).backward()
        optimizer.step()
    for module in frozen:
        assert not module.training
        assert all(not p.requires_grad for p in module.parameters())
        for key, value in module.state_dict().items():
            assert torch.equal(value, before[id(module)][key]), key  # weights and BN statistics
    assert not torch.equal(backbone.fusions[1].block.se_gate.weight, trainable_before)
    assert backbone.streams[2].training


def test_norm_eval_keeps_statistics(tiny_arch):
    backbone = ParNet(arch=tiny_arch, norm_eval=True).train()
    mean_before = backbone.streams[0].blocks[0].identity_norm.running_mean.clone()
    backbone(torch.randn(2, 3, 32, 32))
    assert torch.equal(backbone.streams[0].blocks[0].identity_norm.running_mean, mean_before)


def test_out_indices_without_stride_32_skips_the_final_block(tiny_arch):
    backbone = ParNet(arch=tiny_arch, out_indices=(0, 1, 2))
    assert backbone.final_downsample is None
    assert [o.shape[1] for o in backbone(torch.zeros(1, 3, 32, 32))] == [16, 32, 64]


def test_arch_validation():
    with pytest.raises(KeyError, match='unknown ParNet arch'):
        ParNet(arch='xxl')
    with pytest.raises(KeyError, match='unknown keys'):
        ParNet(arch=dict(ARCH_SETTINGS['s'], widths=3))
    with pytest.raises(KeyError, match='missing keys'):
        ParNet(arch=dict(stream_channels=(8, 16, 32), num_blocks=(1, 1, 1)))
    with pytest.raises(ValueError, match='out_indices'):
        ParNet(arch='s', out_indices=(4,))


def test_stem_channels_default_and_override(tiny_arch):
    assert ParNet(arch=tiny_arch).arch['stem_channels'] == 16
    assert ParNet(arch='xl').stem[0].out_channels == 64
    assert ParNet(arch=dict(tiny_arch, stem_channels=8)).stem[0].out_channels == 8
