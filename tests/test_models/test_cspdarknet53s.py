import math

import pytest
import torch
import torch.nn as nn
from mmcv.cnn import ConvModule
from mmengine.registry import MODELS as MMCV_MODELS

from mmdet.registry import MODELS

import parnet_det  # noqa: F401  (registers the modules)
from parnet_det.analysis import measure_depth
from parnet_det.models.backbones.cspdarknet53s import CSPDarknet53s
from parnet_det.models.layers.csp_layers import BottleneckCSP, DarknetCSPBlock, ResidualBottleneck

STRIDES = (2, 4, 8, 16, 32)
FULL_CHANNELS = (64, 128, 256, 512, 1024)
FULL_BLOCKS = (2, 8, 8, 4)
# widen 0.25, deepen 0.33: widths 8, 16 | 32, 64, 128, 256; blocks max(round(n/3), 1) = 1, 3, 3, 1.
SMALL = dict(widen_factor=0.25, deepen_factor=0.33)
SMALL_CHANNELS = (16, 32, 64, 128, 256)
SMALL_BLOCKS = (1, 3, 3, 1)


def count_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def expected_params(stem_mid, channels, blocks):
    """Parameters from the structure, by hand. BN has 2 parameters per channel
    (weight, bias; the running statistics are buffers); convs followed by BN
    have no bias; the CSP block's two plain 1x1 convs have none either.

    conv(i, o, k) with BN = i*o*k*k + 2*o.
    Stem (s = stem width, m = first conv's width): conv(3, m, 3) + conv(m, s, 3)
        + bottleneck [conv(s, s/2, 1) + conv(s/2, s, 3)].
    Stage (in i, out C = 2h, n bottlenecks): down conv(i, C, 3) = 9*i*C + 2*C, then the CSP block:
        main conv(C, h, 1)  = 2h^2 + 2h       short plain 1x1 C -> h = 2h^2
        main_out plain h->h = h^2             BN(2h)                  = 4h
        final conv(2h, C, 1) = 4h^2 + 2C = 4h^2 + 4h
        n x [conv(h, h, 1) + conv(h, h, 3)]   = n * (10h^2 + 4h)
        block total = 9h^2 + 10h + n * (10h^2 + 4h)

    Full size (m = 32, s = 64):
        stem    928 + 18,560 + (2,112 + 18,560)                            =     40,160
        stage1  (i 64,  h 64,  n 2):   73,984 +    36,864 +   640 +  82,432 =    193,920
        stage2  (i 128, h 128, n 8):  295,424 +   147,456 + 1,280 + 1,314,816 =  1,758,976
        stage3  (i 256, h 256, n 8): 1,180,672 +  589,824 + 2,560 + 5,251,072 =  7,024,128
        stage4  (i 512, h 512, n 4): 4,720,640 + 2,359,296 + 5,120 + 10,493,952 = 17,579,008
        total                                                               = 26,596,192
    (about 26.6M, as the original's 26-27M).
    """
    s = channels[0]
    total = (27 * stem_mid + 2 * stem_mid) + (9 * stem_mid * s + 2 * s)
    total += (s * (s // 2) + s) + (9 * (s // 2) * s + 2 * s)
    in_channels = s
    for out_channels, n in zip(channels[1:], blocks):
        h = out_channels // 2
        total += 9 * in_channels * out_channels + 2 * out_channels
        total += 9 * h * h + 10 * h + n * (10 * h * h + 4 * h)
        in_channels = out_channels
    return total


FULL_PARAMS = 26_596_192


def expected_depth(blocks):
    """Stem: 2 convs + 1 bottleneck (2) = 4; each stage: down conv + main conv
    + 2 per bottleneck + plain 1x1 + final 1x1 = 2n + 4."""
    return 4 + sum(2 * n + 4 for n in blocks)


@pytest.fixture(scope='module')
def full_backbone():
    torch.manual_seed(0)
    model = MODELS.build(dict(type='CSPDarknet53s', out_indices=(0, 1, 2, 3, 4)))
    model.init_weights()
    return model.eval()


@pytest.mark.parametrize('size', [(64, 64), (96, 160)])
def test_full_output_shapes(full_backbone, size):
    assert full_backbone.out_channels == list(FULL_CHANNELS)
    with torch.no_grad():
        outs = full_backbone(torch.randn(1, 3, *size))
    assert len(outs) == 5
    for out, stride, width in zip(outs, STRIDES, FULL_CHANNELS):
        assert out.shape == (1, width, size[0] // stride, size[1] // stride)
        assert torch.isfinite(out).all()


def test_default_outputs_are_strides_8_16_32():
    model = CSPDarknet53s(**SMALL).eval()
    assert model.out_indices == (2, 3, 4)
    assert model.out_channels == list(SMALL_CHANNELS[2:])
    with torch.no_grad():
        outs = model(torch.zeros(2, 3, 64, 64))
    assert [tuple(o.shape) for o in outs] == [(2, 64, 8, 8), (2, 128, 4, 4), (2, 256, 2, 2)]
    # Odd sizes: ceil(input / stride), as the other backbones.
    with torch.no_grad():
        outs = model(torch.zeros(1, 3, 65, 97))
    assert [tuple(o.shape[2:]) for o in outs] == [(math.ceil(65 / s), math.ceil(97 / s)) for s in (8, 16, 32)]


def test_parameter_count(full_backbone):
    count = count_params(full_backbone)
    print(f'CSPDarknet53s parameters: {count:,}')
    assert expected_params(32, FULL_CHANNELS, FULL_BLOCKS) == FULL_PARAMS
    assert count == FULL_PARAMS
    assert 26e6 <= count <= 27e6


def test_measured_depth_is_64(full_backbone):
    assert expected_depth(FULL_BLOCKS) == 64
    assert measure_depth(full_backbone, (1, 3, 64, 64)) == 64
    default = CSPDarknet53s(**SMALL)
    assert measure_depth(default, (1, 3, 64, 64)) == expected_depth(SMALL_BLOCKS)


def test_widen_and_deepen_shrink_the_model(full_backbone):
    small = CSPDarknet53s(out_indices=(0, 1, 2, 3, 4), **SMALL)
    assert small.out_channels == list(SMALL_CHANNELS)
    blocks = [len(getattr(small, f'stage{i}')[1].blocks) for i in range(1, 5)]
    assert blocks == list(SMALL_BLOCKS)
    assert count_params(small) == expected_params(8, SMALL_CHANNELS, SMALL_BLOCKS)
    assert count_params(small) < count_params(full_backbone) / 10
    # Widths stay multiples of 8, and at least one bottleneck per stage.
    tiny = CSPDarknet53s(widen_factor=0.1, deepen_factor=0.01)
    assert all(c % 8 == 0 for c in tiny.out_channels)
    assert all(len(getattr(tiny, f'stage{i}')[1].blocks) == 1 for i in range(1, 5))


def test_unused_stages_are_not_built():
    model = CSPDarknet53s(out_indices=(1, 2), **SMALL)
    assert not hasattr(model, 'stage3') and not hasattr(model, 'stage4')
    outs = model(torch.zeros(1, 3, 32, 32))
    assert [o.shape[1] for o in outs] == model.out_channels == [32, 64]


def test_mish_is_the_default_activation():
    assert 'Mish' in MMCV_MODELS.module_dict or MODELS.get('Mish') is not None
    model = CSPDarknet53s(**SMALL)
    activations = {type(m) for m in model.modules()
                   if isinstance(m, (nn.ReLU, nn.SiLU, nn.LeakyReLU, nn.Mish, nn.GELU, nn.Hardswish))}
    assert activations == {nn.Mish}
    # 2 stem convs + the stem bottleneck's 2, then per stage: down conv, main conv, the
    # norm+act after the concatenation, the final conv, and 2 per bottleneck.
    num_mish = sum(isinstance(m, nn.Mish) for m in model.modules())
    assert num_mish == 4 + sum(4 + 2 * n for n in SMALL_BLOCKS)
    # BN with YOLO's momentum and eps everywhere.
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert norms and all(m.momentum == 0.03 and m.eps == 0.001 for m in norms)
    other = CSPDarknet53s(act_cfg=dict(type='SiLU'), **SMALL)
    assert not any(isinstance(m, nn.Mish) for m in other.modules())


def test_csp_block_structure():
    block = BottleneckCSP(16, 32, num_blocks=2)
    assert block.main_conv.conv.out_channels == 16 and block.short_conv.out_channels == 16
    assert block.main_out_conv.bias is None and block.short_conv.bias is None
    assert block.norm.num_features == 32
    assert all(isinstance(b, ResidualBottleneck) and b.add_identity for b in block.blocks)
    assert block.blocks[0].conv1.conv.out_channels == 16  # expansion 1.0 inside the CSP block
    assert block(torch.randn(2, 16, 8, 8)).shape == (2, 32, 8, 8)
    # The residual is added only when the shapes agree.
    assert not ResidualBottleneck(8, 16).add_identity


def _state(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _sgd_step(model, size=(64, 64)):
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(params, lr=0.1, momentum=0.9, weight_decay=1e-3)
    model.train()
    loss = sum(o.float().pow(2).mean() for o in model(torch.randn(2, 3, *size)))
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()


def _changed(before, after):
    return {k for k in before if before[k].is_floating_point() and not torch.equal(before[k], after[k])}


@pytest.mark.parametrize('frozen_stages', [0, 2])
def test_frozen_stages(frozen_stages):
    torch.manual_seed(0)
    model = CSPDarknet53s(frozen_stages=frozen_stages, **SMALL)
    model.init_weights()
    frozen = model.layers[:frozen_stages + 1]
    model.train()
    for name in model.layers:
        module = getattr(model, name)
        is_frozen = name in frozen
        assert all(p.requires_grad != is_frozen for p in module.parameters())
        assert all(m.training != is_frozen for m in module.modules())
    before = _state(model)
    _sgd_step(model)
    changed = _changed(before, _state(model))
    for key in before:
        if key.split('.')[0] in frozen:
            assert key not in changed, key  # weights and BN statistics
    trainable = [k for k in before if k.split('.')[0] not in frozen and before[k].is_floating_point()]
    assert set(trainable) <= changed | {k for k in trainable if k.endswith('num_batches_tracked')}


def test_frozen_stages_range():
    with pytest.raises(ValueError, match='frozen_stages'):
        CSPDarknet53s(frozen_stages=5)
    with pytest.raises(ValueError, match='out_indices'):
        CSPDarknet53s(out_indices=(5,))


def test_norm_eval_keeps_statistics():
    model = CSPDarknet53s(norm_eval=True, **SMALL)
    model.train()
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert norms and not any(m.training for m in norms)
    stats = {k: v.clone() for k, v in model.state_dict().items() if 'running' in k}
    _sgd_step(model)
    assert all(torch.equal(stats[k], model.state_dict()[k]) for k in stats)
    # Without norm_eval the statistics move.
    model = CSPDarknet53s(**SMALL)
    stats = {k: v.clone() for k, v in model.state_dict().items() if 'running_mean' in k}
    _sgd_step(model)
    assert all(not torch.equal(stats[k], model.state_dict()[k]) for k in stats)


@pytest.mark.parametrize('with_cp', [False, True])
def test_gradients_reach_the_first_conv(with_cp):
    torch.manual_seed(0)
    model = CSPDarknet53s(with_cp=with_cp, **SMALL)
    model.init_weights()
    model.train()
    loss = sum(o.pow(2).mean() for o in model(torch.randn(2, 3, 32, 32)))
    loss.backward()
    grad = model.stem[0].conv.weight.grad
    assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0
    assert all(p.grad is not None for p in model.parameters())


def test_per_branch_form_is_the_cfg_block():
    """csp_form='per_branch' (yolov4-csp.cfg): both 1x1 branches with their own BN + Mish before the
    concatenation, a 1x1 ConvModule closing the main branch; same widths, strides and parameter count
    (the shared 2h-channel BN becomes two h-channel BNs)."""
    model = CSPDarknet53s(out_indices=(0, 1, 2, 3, 4), csp_form='per_branch')
    assert count_params(model) == FULL_PARAMS
    for i in range(1, 5):
        block = getattr(model, f'stage{i}')[1]
        assert isinstance(block, DarknetCSPBlock) and len(block.blocks) == FULL_BLOCKS[i - 1]
        convs = [m for m in block.modules() if isinstance(m, nn.Conv2d)]
        assert len(convs) == 2 * FULL_BLOCKS[i - 1] + 4
        assert all(isinstance(m, ConvModule) and m.with_norm for m in block.modules()
                   if isinstance(m, ConvModule)) and not any(isinstance(m, BottleneckCSP) for m in model.modules())
    small = CSPDarknet53s(csp_form='per_branch', **SMALL).eval()
    with torch.no_grad():
        outs = small(torch.zeros(1, 3, 64, 96))
    assert [tuple(o.shape) for o in outs] == [(1, 64, 8, 12), (1, 128, 4, 6), (1, 256, 2, 3)]
    with pytest.raises(ValueError, match="csp_form must be one of \\['per_branch', 'shared_norm'\\]"):
        CSPDarknet53s(csp_form='darknet')
