"""NominalBatchOptimWrapper against train.py's arithmetic: the accumulation count, its warm-up ramp, the weight
decay scaling, summed gradients, and the steps it makes (with YOLOv4CSPLrHook, as the recipe's config sets it)."""
import numpy as np
import pytest
import torch
import torch.nn as nn
from mmengine.optim import build_optim_wrapper

from parnet_det.engine import NominalBatchOptimWrapper

NBS = 64


def wrapper(**kwargs):
    model = nn.Sequential(nn.Conv2d(1, 2, 1), nn.BatchNorm2d(2))
    cfg = dict(type='NominalBatchOptimWrapper', constructor='YOLOv4CSPOptimWrapperConstructor',
               optimizer=dict(type='SGD', lr=0.01, momentum=0.937, weight_decay=5e-4, nesterov=True), **kwargs)
    return model, build_optim_wrapper(model, cfg)


@pytest.mark.parametrize('total_batch', [1, 8, 16, 24, 40, 64, 96, 128, 256])
def test_accumulation_and_weight_decay_follow_train_py(total_batch, mmdet_scope):
    _, optim = wrapper()
    optim.set_total_batch_size(total_batch)
    accumulate = max(round(NBS / total_batch), 1)  # train.py, before the loop
    assert optim.accumulate == accumulate
    decays = {g['group_name']: g['weight_decay'] for g in optim.optimizer.param_groups}
    assert decays == dict(no_decay=0, decay=pytest.approx(5e-4 * total_batch * accumulate / NBS), bias=0)
    nw = 1000
    for ni in range(0, nw + 1, 7):
        optim.ramp_accumulate(ni / nw)
        # train.py's warm-up: accumulate = max(1, np.interp(ni, xi, [1, nbs / total_batch_size]).round())
        assert optim.accumulate == max(1, np.interp(ni, [0, nw], [1, NBS / total_batch]).round()), ni
    optim.ramp_accumulate(1.0)
    assert optim.accumulate == accumulate


def test_gradients_are_summed_and_steps_end_each_window(mmdet_scope):
    model, optim = wrapper()
    optim.set_total_batch_size(16)
    optim.initialize_count_status(model, 0, 100)
    weight = model[0].weight
    x = torch.ones(1, 1, 1, 1)
    steps, grads = [], []
    for iteration in range(8):
        assert optim.should_sync() == (iteration % 4 == 3)  # DDP reduces in a window's last micro-batch only
        before = weight.detach().clone()
        optim.update_params(model[0](x).sum())
        steps.append(not torch.equal(before, weight.detach()))
        grads.append(None if weight.grad is None else weight.grad.clone())
        assert optim.should_update() == steps[-1]  # what OptimizerStepEMAHook asks after the iteration
    assert steps == [False, False, False, True] * 2
    # 3 micro-batches summed (each gradient 1, no division by the count), then zeroed after the step.
    assert grads[2].flatten().tolist() == [3.0, 3.0]
    assert grads[3] is None or not grads[3].any()


def test_refusals(mmdet_scope):
    with pytest.raises(ValueError, match='remove optim_wrapper.accumulative_counts'):
        wrapper(accumulative_counts=4)
    model, optim = wrapper()
    optim.initialize_count_status(model, 0, 10)
    with pytest.raises(RuntimeError, match='needs YOLOv4CSPLrHook in custom_hooks'):
        optim.update_params(model[0](torch.ones(1, 1, 1, 1)).sum())
    assert isinstance(optim, NominalBatchOptimWrapper)
