"""The reduced neck refuses a number of backbone outputs it was not built for, instead of dropping some."""
import pytest
import torch

from parnet_det.models.necks import ReducedYOLOXPAFPN


def test_reduced_neck_refuses_a_mismatched_number_of_inputs():
    neck = ReducedYOLOXPAFPN(in_channels=[8, 16, 32], reduced_channels=[8, 16, 32], out_channels=8, num_csp_blocks=1)
    features = [torch.zeros(1, 8 * 2**i, 16 // 2**i, 16 // 2**i) for i in range(4)]
    expected = ('ReducedYOLOXPAFPN is built for 3 levels (in_channels) but got {} inputs; give the backbone as many '
                'out_indices as the neck has in_channels')
    for count in (4, 2):
        with pytest.raises(ValueError) as info:
            neck(tuple(features[:count]))
        assert str(info.value) == expected.format(count)
    assert [tuple(x.shape) for x in neck(tuple(features[:3]))] == [(1, 8, 16, 16), (1, 8, 8, 8), (1, 8, 4, 4)]
