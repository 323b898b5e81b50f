"""The reduced neck: ParNet detectors differ from the baseline only in the backbone and three 1x1 convs."""
from pathlib import Path

import pytest
import torch
from mmcv.cnn import ConvModule

from mmdet.models.necks import YOLOXPAFPN
from mmdet.registry import MODELS

from parnet_det.analysis import count_parameters
from parnet_det.apis import load_config
from parnet_det.deploy import fold_conv_module_norms, switch_to_deploy
from parnet_det.models.necks import ReducedYOLOXPAFPN

from ..helpers import TINY_ARCH, randomize_norm_stats, relative_error

REPO = Path(__file__).resolve().parents[2]
PARNET_CONFIGS = ['yolo_parnet_s_coco', 'yolo_parnet_m_coco', 'yolo_parnet_l_coco', 'yolo_parnet_xl_coco',
                  'yolo_parnet_xl_csp_coco']
BASELINE_WIDTHS = [256, 512, 1024]


def _neck_and_head_parameters(model) -> int:
    return count_parameters(model.neck) + count_parameters(model.bbox_head)


@pytest.fixture(scope='module')
def baseline():
    return MODELS.build(load_config(str(REPO / 'configs/yolo_cspdarknet53s_coco.py')).model)


@pytest.mark.parametrize('name', PARNET_CONFIGS)
def test_every_parnet_config_maps_its_backbone_to_the_baseline_widths(name, baseline):
    model = MODELS.build(load_config(str(REPO / f'configs/{name}.py')).model)
    assert isinstance(model.neck, ReducedYOLOXPAFPN)
    model.eval()
    with torch.no_grad():
        widths = [output.shape[1] for output in model.backbone(torch.zeros(1, 3, 64, 64))]
    reductions = model.neck.reductions
    assert [r.conv.in_channels for r in reductions] == widths
    assert [r.conv.out_channels for r in reductions] == BASELINE_WIDTHS == list(baseline.neck.in_channels)
    assert all(isinstance(r, ConvModule) and r.conv.kernel_size == (1, 1) and r.with_norm for r in reductions)
    # Beside the three 1x1 convs, the neck and head are the baseline's, parameter for parameter.
    shapes = lambda module: [tuple(p.shape) for p in module.parameters()]
    pafpn = [p for n, p in model.neck.named_parameters() if not n.startswith('reductions.')]
    assert [tuple(p.shape) for p in pafpn] == shapes(baseline.neck)
    assert shapes(model.bbox_head) == shapes(baseline.bbox_head)
    # The bound: neck + head at most 1.3x the baseline's.
    assert _neck_and_head_parameters(model) <= 1.3 * _neck_and_head_parameters(baseline)


def test_the_wide_neck_reference_config_keeps_the_backbone_widths(baseline):
    model = MODELS.build(load_config(str(REPO / 'configs/yolo_parnet_xl_wideneck_coco.py')).model)
    assert type(model.neck) is YOLOXPAFPN and list(model.neck.in_channels) == [400, 800, 3200]
    assert _neck_and_head_parameters(model) > 3 * _neck_and_head_parameters(baseline)


def test_reductions_fold_with_the_pafpn_and_outputs_stay_the_same():
    widths = [*TINY_ARCH['stream_channels'][1:], TINY_ARCH['final_channels']]
    neck = ReducedYOLOXPAFPN(in_channels=widths, reduced_channels=[24, 40, 72], out_channels=32, num_csp_blocks=1)
    randomize_norm_stats(neck)
    neck.eval()
    inputs = [torch.randn(2, width, size, 2 * size) for width, size in zip(widths, (12, 6, 3))]
    with torch.no_grad():
        expected = neck(inputs)
        folded = fold_conv_module_norms(neck)
        actual = neck(inputs)
    assert folded == sum(isinstance(m, ConvModule) for m in neck.modules()) and folded >= 3
    assert all(not any(isinstance(m, torch.nn.BatchNorm2d) for m in r.modules()) for r in neck.reductions)
    for e, a in zip(expected, actual):
        assert a.shape == e.shape and a.shape[1] == 32
        assert relative_error(a, e) < 1e-5


def test_the_detector_with_a_reduced_neck_folds_exactly():
    cfg = load_config(str(REPO / 'configs/demo/yolo_parnet_tiny_synthetic.py'))
    model = MODELS.build(cfg.model)
    assert isinstance(model.neck, ReducedYOLOXPAFPN)
    randomize_norm_stats(model)
    model.eval()
    inputs = torch.randn(1, 3, 96, 64)
    with torch.no_grad():
        expected = model._forward(inputs)
        assert switch_to_deploy(model) > 0 and fold_conv_module_norms(model) > 0
        actual = model._forward(inputs)
    for e_level, a_level in zip(expected, actual):
        for e, a in zip(e_level, a_level):
            assert relative_error(a, e) < 1e-4


def test_one_width_per_level_is_required():
    with pytest.raises(ValueError, match='one width per level'):
        ReducedYOLOXPAFPN(in_channels=[8, 16, 32], reduced_channels=[8, 16], out_channels=8)


@pytest.mark.parametrize('name, widths', [('yolov4_csp_parnet_xl_coco', (400, 800, 3200)),
                                          ('yolov4_csp_parnet_xl_csp_coco', (400, 800, 3200)),
                                          ('yolov4_csp_parnet_s_coco', (192, 384, 1280)),
                                          ('yolov4_csp_parnet_m_coco', (256, 512, 2048))])
def test_yolov4_csp_parnet_configs_keep_the_published_neck_and_head(name, widths):
    # Like for like with configs/yolov4_csp_coco.py: the same neck (SPP-CSP, CSP-PAN) tensor for tensor,
    # behind three 1x1 convs from ParNet's widths to 256/512/1024, and the same head config.
    baseline = load_config(str(REPO / 'configs/yolov4_csp_coco.py')).model
    paper = load_config(str(REPO / 'configs' / f'{name}.py')).model
    assert paper.bbox_head == baseline.bbox_head
    shapes = {k: v.shape for k, v in MODELS.build(paper.neck).state_dict().items()}
    reductions = {k: shapes.pop(k) for k in list(shapes) if k.startswith('reductions.')}
    assert shapes == {k: v.shape for k, v in MODELS.build(baseline.neck).state_dict().items()}
    assert [reductions[f'reductions.{i}.conv.weight'] for i in range(3)] == [
        (256, widths[0], 1, 1), (512, widths[1], 1, 1), (1024, widths[2], 1, 1)]
