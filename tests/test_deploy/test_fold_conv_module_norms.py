"""Folding the ConvModules' BatchNorms keeps a detector's outputs and leaves every other norm alone."""
import torch
from mmcv.cnn import ConvModule
from torch.nn.modules.batchnorm import _BatchNorm

from mmdet.registry import MODELS

from parnet_det.analysis.folding import foldable_norms
from parnet_det.apis import load_config
from parnet_det.deploy import fold_conv_module_norms, switch_to_deploy
from parnet_det.models.layers.csp_layers import BottleneckCSP

from ..helpers import randomize_norm_stats, relative_error


def count_norms(model):
    """(norms of ConvModules and of CSP concatenations: the foldable ones, every norm)."""
    foldable = sum(isinstance(m.norm, _BatchNorm) for m in model.modules()
                   if isinstance(m, (ConvModule, BottleneckCSP)) and getattr(m, 'with_norm', True))
    return foldable, sum(isinstance(m, _BatchNorm) for m in model.modules())


def test_folding_keeps_outputs_and_only_touches_conv_modules():
    for config in ('configs/demo/yolo_parnet_tiny_synthetic.py', 'configs/demo/yolo_cspdarknet53s_tiny_synthetic.py'):
        torch.manual_seed(0)
        model = MODELS.build(load_config(config).model)
        randomize_norm_stats(model)
        model.eval()
        switch_to_deploy(model)
        x = torch.rand(2, 3, 96, 128) * 255
        with torch.no_grad():
            expected = model._forward(x)
            foldable, all_norms = count_norms(model)
            assert fold_conv_module_norms(model) == foldable > 0
            # ParNet's identity and fusion norms: not after a conv of theirs.
            assert count_norms(model) == (0, all_norms - foldable)
            assert foldable_norms(model, (1, 3, 64, 64)) == []
            for level_expected, level_got in zip(expected, model._forward(x)):
                for e, g in zip(level_expected, level_got):
                    assert relative_error(g, e) < 1e-5
