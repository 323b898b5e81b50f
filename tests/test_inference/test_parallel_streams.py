"""Stream-parallel ParNet gives the sequential form's outputs (CPU fallback here, CUDA where present)."""
import copy

import pytest
import torch

from parnet_det.deploy import switch_to_deploy
from parnet_det.inference import CUDAGraphRunner
from parnet_det.models import ParNet, ParNetCSP
from parnet_det.models.utils import StreamFork

from ..helpers import TINY_ARCH, randomize_norm_stats, requires_cuda


def deployed_backbone(cls, parallel_streams, device='cpu'):
    torch.manual_seed(0)
    backbone = cls(arch=TINY_ARCH, out_indices=(0, 1, 2, 3), parallel_streams=parallel_streams)
    randomize_norm_stats(backbone)
    backbone.eval()
    switch_to_deploy(backbone)
    return backbone.to(device)


@pytest.mark.parametrize('cls', [ParNet, ParNetCSP])
def test_cpu_fallback_is_the_sequential_form(cls):
    sequential = deployed_backbone(cls, parallel_streams=False)
    parallel = deployed_backbone(cls, parallel_streams=True)
    x = torch.randn(2, 3, 64, 48)
    assert not parallel._runs_streams_in_parallel(x)
    with torch.no_grad():
        for got, expected in zip(parallel(x), sequential(x)):
            assert torch.equal(got, expected)


def test_disabled_fork_runs_inline():
    fork = StreamFork(torch.device('cpu'), num_branches=2, enabled=True)
    assert not fork.enabled
    x = torch.ones(3)
    with fork.branch(0, x):
        y = x * 2
    fork.join(0, y)
    assert torch.equal(y, torch.full((3, ), 2.0))


@requires_cuda
@pytest.mark.parametrize('cls', [ParNet, ParNetCSP])
def test_cuda_streams_match_sequential(cls):
    sequential = deployed_backbone(cls, parallel_streams=False, device='cuda')
    parallel = copy.deepcopy(sequential)
    parallel.parallel_streams = True
    assert parallel._runs_streams_in_parallel(torch.empty(1, device='cuda'))
    with torch.inference_mode():
        # Several calls: a missing wait or record_stream shows up as an intermittent difference.
        for _ in range(5):
            x = torch.randn(2, 3, 96, 80, device='cuda')
            got, expected = parallel(x), sequential(x)
            for g, e in zip(got, expected):
                torch.testing.assert_close(g, e, rtol=1e-5, atol=1e-5)


@requires_cuda
def test_cuda_graph_captures_the_parallel_streams():
    backbone = deployed_backbone(ParNet, parallel_streams=True, device='cuda')
    graphed = CUDAGraphRunner(backbone)
    # Replays on new inputs: a stale replay or a missed input copy would return the first outputs.
    with torch.inference_mode():
        for seed in range(3):
            x = torch.randn(1, 3, 64, 64, device='cuda', generator=torch.Generator('cuda').manual_seed(seed))
            expected = [t.clone() for t in backbone(x)]
            for g, e in zip(graphed(x), expected):
                torch.testing.assert_close(g, e, rtol=1e-5, atol=1e-5)
