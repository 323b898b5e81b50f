"""Scaled-YOLOv4's three parameter groups: which parameter goes where, with which weight decay."""
import pytest
import torch.nn as nn
from torch.nn.modules.batchnorm import _BatchNorm

from mmdet.registry import OPTIM_WRAPPER_CONSTRUCTORS

from parnet_det.apis import build_detector
from parnet_det.models.layers import ImplicitPredictionConv

from ..test_models.test_implicit_head import tiny_config

OPTIM_WRAPPER = dict(type='OptimWrapper',
                     optimizer=dict(type='SGD', lr=0.01, momentum=0.937, weight_decay=5e-4, nesterov=True))


def build_groups(model, optim_wrapper=OPTIM_WRAPPER, **kwargs):
    constructor = OPTIM_WRAPPER_CONSTRUCTORS.build(
        dict(type='YOLOv4CSPOptimWrapperConstructor', optim_wrapper_cfg=optim_wrapper, **kwargs))
    return constructor(model).optimizer.param_groups


@pytest.fixture(scope='module')
def yolor():
    """The YOLOR config's detector (ParNet, reduced neck, implicit head), narrow."""
    return build_detector(tiny_config())


def test_yolor_detector_in_the_recipes_three_groups(yolor):
    groups = build_groups(yolor)
    assert [g['group_name'] for g in groups] == ['no_decay', 'decay', 'bias']
    assert [g['weight_decay'] for g in groups] == [0.0, 5e-4, 0.0]
    assert all(g['lr'] == 0.01 and g['momentum'] == 0.937 and g['nesterov'] for g in groups)
    group_of = {id(p): g['group_name'] for g in groups for p in g['params']}
    # Every trainable parameter exactly once.
    listed = [id(p) for g in groups for p in g['params']]
    assert len(listed) == len(set(listed)) == len(list(yolor.parameters()))
    named = dict(yolor.named_parameters())
    pred = 'bbox_head.convs_pred.0'
    assert isinstance(yolor.get_submodule(pred), ImplicitPredictionConv)
    expected = {
        f'{pred}.conv.weight': 'decay', f'{pred}.conv.bias': 'bias',
        f'{pred}.implicit_a.implicit': 'no_decay', f'{pred}.implicit_m.implicit': 'no_decay',  # yolor: no decay
        'bbox_head.convs_bridge.0.conv.weight': 'decay',
        'bbox_head.convs_bridge.0.bn.weight': 'no_decay', 'bbox_head.convs_bridge.0.bn.bias': 'bias',
    }
    assert {name: group_of[id(named[name])] for name in expected} == expected
    # Counted by module type: one decayed weight per conv, no-decay = BN weights + the 2 implicit vectors per level.
    convs = [m for m in yolor.modules() if isinstance(m, nn.Conv2d)]
    norms = [m for m in yolor.modules() if isinstance(m, _BatchNorm)]
    implicit = [m for m in yolor.modules() if isinstance(m, ImplicitPredictionConv)]
    assert len(implicit) == 3
    counts = {name: sum(1 for g in group_of.values() if g == name) for name in ('no_decay', 'decay', 'bias')}
    assert counts == dict(decay=len(convs), no_decay=len(norms) + 2 * len(implicit),
                          bias=len(norms) + sum(1 for m in convs if m.bias is not None))


def test_frozen_parameters_are_left_out_and_empty_groups_kept():
    model = nn.Sequential(nn.Conv2d(2, 3, 1, bias=False), nn.BatchNorm2d(3))
    model[1].weight.requires_grad_(False)
    groups = build_groups(model)
    assert [(g['group_name'], len(g['params'])) for g in groups] == [('no_decay', 0), ('decay', 1), ('bias', 1)]


def test_a_linear_layer_is_decayed_and_a_shared_parameter_listed_once():
    linear = nn.Linear(2, 2)
    model = nn.Sequential(linear, linear)
    groups = build_groups(model)
    assert [[tuple(p.shape) for p in g['params']] for g in groups] == [[], [(2, 2)], [(2, )]]


def test_paramwise_cfg_is_refused_in_one_line():
    with pytest.raises(ValueError, match='takes no paramwise_cfg .*: remove optim_wrapper.paramwise_cfg$'):
        build_groups(nn.Linear(1, 1), paramwise_cfg=dict(norm_decay_mult=0.))
    with pytest.raises(ValueError, match='weight_decay must be >= 0, got -1'):
        build_groups(nn.Linear(1, 1), dict(optimizer=dict(type='SGD', lr=0.1, weight_decay=-1)))
