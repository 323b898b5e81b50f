import pytest
import torch
import torch.nn.functional as F

from parnet_det.deploy import switch_to_deploy
from parnet_det.models.layers import (
    DownsamplingBlock,
    FusionBlock,
    RepVGGSSEBlock,
    channel_shuffle,
    interleave_channels,
)

from ..helpers import randomize_norm_stats, relative_error


def test_interleave_is_channel_by_channel():
    a = torch.arange(3.).view(1, 3, 1, 1)
    b = 10 + torch.arange(3.).view(1, 3, 1, 1)
    assert interleave_channels(a, b).flatten().tolist() == [0, 10, 1, 11, 2, 12]


def test_channel_shuffle_moves_groups_apart():
    x = torch.arange(6.).view(1, 6, 1, 1)
    assert channel_shuffle(x, 2).flatten().tolist() == [0, 3, 1, 4, 2, 5]
    with pytest.raises(ValueError, match='groups'):
        channel_shuffle(x, 4)


BLOCKS = {
    'stream_block': lambda: RepVGGSSEBlock(8),
    'downsample_s2': lambda: DownsamplingBlock(6, 10, stride=2),
    'downsample_s2_grouped': lambda: DownsamplingBlock(8, 12, stride=2, groups=2),
    'downsample_s1_grouped': lambda: DownsamplingBlock(8, 6, stride=1, groups=2),
}


@pytest.mark.parametrize('name', sorted(BLOCKS))
@pytest.mark.parametrize('size', [(16, 16), (15, 9), (7, 10)])
def test_block_folds_exactly(name, size):
    torch.manual_seed(0)
    block = BLOCKS[name]()
    randomize_norm_stats(block)
    block.eval()
    x = torch.randn(2, block.in_channels, *size)
    expected = block(x)
    kernel, bias = block.get_equivalent_kernel_bias()
    assert kernel.shape[-2:] == (3, 3)
    # The equivalent kernel alone reproduces the linear branches.
    linear = F.conv2d(x, kernel, bias, stride=block.stride, padding=1, groups=block.groups)
    assert relative_error(linear, block.forward_linear(x)) <= 1e-5
    block.switch_to_deploy()
    assert block.deploy and not hasattr(block, 'conv3x3') and not hasattr(block, 'conv1x1')
    assert relative_error(block(x), expected) <= 1e-5


def test_downsampling_output_size_is_ceil_half_for_odd_inputs():
    block = DownsamplingBlock(4, 4).eval()
    assert block(torch.randn(1, 4, 25, 13)).shape[-2:] == (13, 7)


def test_deploy_built_block_loads_folded_weights():
    block = DownsamplingBlock(8, 12, stride=2, groups=2)
    randomize_norm_stats(block)
    block.eval()
    x = torch.randn(1, 8, 11, 14)
    expected = block(x)
    block.switch_to_deploy()
    built = DownsamplingBlock(8, 12, stride=2, groups=2, deploy=True).eval()
    built.load_state_dict(block.state_dict(), strict=True)
    assert relative_error(built(x), expected) <= 1e-5


def test_fusion_block_folds_and_uses_both_inputs():
    torch.manual_seed(0)
    fusion = FusionBlock(6, 10, stride=2)
    randomize_norm_stats(fusion)
    fusion.eval()
    stream, fused = torch.randn(2, 6, 9, 12), torch.randn(2, 6, 9, 12)
    out = fusion((stream, fused))
    assert out.shape == (2, 10, 5, 6)
    assert not torch.allclose(fusion((stream, torch.zeros_like(fused))), out)
    assert not torch.allclose(fusion((torch.zeros_like(stream), fused)), out)
    assert switch_to_deploy(fusion) == 1
    assert relative_error(fusion((stream, fused)), out) <= 1e-5


def test_fold_refuses_a_norm_without_running_stats():
    block = RepVGGSSEBlock(8, norm_cfg=dict(type='GN', num_groups=2)).eval()
    with pytest.raises(TypeError, match='BatchNorm'):
        block.switch_to_deploy()


def test_activation_and_norm_are_configurable():
    block = RepVGGSSEBlock(4, act_cfg=dict(type='ReLU'))
    assert isinstance(block.activate, torch.nn.ReLU)
    assert (block(torch.randn(1, 4, 5, 5)) >= 0).all()
