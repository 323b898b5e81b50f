"""Scaled-YOLOv4's lr / momentum schedule in a real mmengine Runner: the warm-up per group, the cosine per
epoch, resumed runs continuing the curve, and one-line errors for what the hook cannot schedule."""
import math

import pytest
import torch
import torch.nn as nn
from mmengine.hooks import Hook
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch.utils.data import Dataset

from parnet_det.engine import YOLOv4CSPLrHook
from parnet_det.models.layers.implicit_conv import ImplicitA

LR0, M0, EPOCHS, ITERS_PER_EPOCH = 0.01, 0.937, 6, 4  # 16 samples, batch 4


class GroupsModel(BaseModel):
    """A parameter of each group: conv weight (decay), conv / BN bias (bias), BN weight and implicit (no_decay)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 2, 1)
        self.bn = nn.BatchNorm2d(2)
        self.implicit = ImplicitA(2)

    def forward(self, inputs, labels, mode='tensor'):
        out = self.implicit(self.bn(self.conv(inputs[:, :, None, None]))).flatten(1).sum(1, keepdim=True)
        return dict(loss=(out - labels).square().mean()) if mode == 'loss' else out


class Samples(Dataset):

    def __len__(self):
        return 4 * ITERS_PER_EPOCH

    def __getitem__(self, index):
        x = torch.tensor([index / 16, 1.0 - index / 32])
        return dict(inputs=x, labels=x[:1] * 3)


class RecordRates(Hook):
    """(iteration, epoch) -> ([lr per group], [momentum per group]) that the optimizer step used."""

    priority = 'LOWEST'

    def __init__(self):
        self.rates = {}

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        groups = runner.optim_wrapper.optimizer.param_groups
        self.rates[runner.iter] = ([g['lr'] for g in groups], [g['momentum'] for g in groups])


def toy_runner(work_dir, hook=None, optimizer=None, **kwargs):
    recorder = RecordRates()
    hook = hook or dict(type='YOLOv4CSPLrHook', warmup_epochs=2, warmup_min_iters=5)
    optimizer = optimizer or dict(type='SGD', lr=LR0, momentum=M0, weight_decay=5e-4, nesterov=True)
    runner = Runner(
        model=GroupsModel(), work_dir=str(work_dir),
        train_dataloader=dict(dataset=Samples(), sampler=dict(type='DefaultSampler', shuffle=False),
                              collate_fn=dict(type='default_collate'), batch_size=4),
        train_cfg=kwargs.pop('train_cfg', dict(by_epoch=True, max_epochs=EPOCHS)),
        optim_wrapper=dict(constructor='YOLOv4CSPOptimWrapperConstructor', optimizer=optimizer),
        custom_hooks=[hook, recorder],
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=1), logger=dict(type='LoggerHook',
                                                                                           interval=1)),
        default_scope='mmdet', randomness=dict(seed=0), **kwargs)
    return runner, recorder


def assert_rates(recorded, lrs, momenta):
    """``recorded`` (lrs, momenta of the groups no_decay, decay, bias) equal ``lrs`` and ``momenta``."""
    assert recorded[0] == pytest.approx(lrs, abs=1e-12, rel=1e-9)
    assert recorded[1] == pytest.approx(momenta, abs=1e-12, rel=1e-9)


def lf(epoch):
    """The recipe's LambdaLR factor, lrf 0.2."""
    return (1 + math.cos(math.pi * epoch / EPOCHS)) / 2 * 0.8 + 0.2


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    """A full run: 6 epochs x 4 iterations, warm-up max(2 x 4, 5) = 8 iterations."""
    work_dir = tmp_path_factory.mktemp('lr_hook')
    runner, recorder = toy_runner(work_dir)
    runner.train()
    return runner, recorder.rates, work_dir


def test_warmup_start_middle_end_and_cosine_per_epoch(trained):
    runner, rates, _ = trained
    assert [g['group_name'] for g in runner.optim_wrapper.optimizer.param_groups] == ['no_decay', 'decay', 'bias']
    assert sorted(rates) == list(range(EPOCHS * ITERS_PER_EPOCH))
    # Iteration 0: biases at 0.1, the others at 0, momentum 0.8.
    assert_rates(rates[0], [0, 0, 0.1], [0.8] * 3)
    # Iteration 4 (epoch 1), half-way through the warm-up of 8.
    scheduled = LR0 * lf(1)
    assert_rates(rates[4], [scheduled / 2, scheduled / 2, 0.1 + (scheduled - 0.1) / 2], [0.8 + (M0 - 0.8) / 2] * 3)
    # Iteration 7, one before the end.
    assert_rates(rates[7], [scheduled * 7 / 8] * 2 + [0.1 + (scheduled - 0.1) * 7 / 8], [0.8 + (M0 - 0.8) * 7 / 8] * 3)
    # Iteration 8 (epoch 2): the warm-up is over; every iteration of an epoch has that epoch's rate.
    for epoch in range(2, EPOCHS):
        for i in range(epoch * ITERS_PER_EPOCH, (epoch + 1) * ITERS_PER_EPOCH):
            assert_rates(rates[i], [LR0 * lf(epoch)] * 3, [M0] * 3)
    # The logged lr is the one the step used (the first group's): the hook runs before RuntimeInfoHook logs it.
    logged = runner.message_hub.get_scalar('train/lr').data[0]
    assert list(logged) == pytest.approx([rates[i][0][0] for i in sorted(rates)], abs=1e-12)


def test_warmup_lasts_at_least_warmup_min_iters(tmp_path):
    # 4 epochs, warm-up max(round(2 x 4), 12) = 12 iterations: iteration 6 (epoch 1) is half-way.
    runner, recorder = toy_runner(tmp_path, hook=dict(type='YOLOv4CSPLrHook', warmup_epochs=2, warmup_min_iters=12),
                                  train_cfg=dict(by_epoch=True, max_epochs=4))
    runner.train()
    epoch1, epoch3 = ((1 + math.cos(math.pi * e / 4)) / 2 * 0.8 + 0.2 for e in (1, 3))
    assert_rates(recorder.rates[6], [LR0 * epoch1 / 2] * 2 + [0.1 + (LR0 * epoch1 - 0.1) / 2],
                 [0.8 + (M0 - 0.8) / 2] * 3)
    assert_rates(recorder.rates[12], [LR0 * epoch3] * 3, [M0] * 3)


def test_a_resumed_run_continues_the_curve(trained, tmp_path):
    _, rates, work_dir = trained
    # From the end of epoch 1 (iteration 4, inside the warm-up): the checkpoint's optimizer holds iteration 3's
    # rates, which the hook must not take for lr0.
    runner, recorder = toy_runner(tmp_path, resume=True, load_from=str(work_dir / 'epoch_1.pth'))
    runner.train()
    assert sorted(recorder.rates) == list(range(4, EPOCHS * ITERS_PER_EPOCH))
    assert recorder.rates == {i: rates[i] for i in recorder.rates}


def test_a_test_or_val_run_is_left_alone(tmp_path):
    # Runner.test and Runner.val call before_run with the optimizer and the train loop still configs.
    runner, _ = toy_runner(tmp_path)
    hook = YOLOv4CSPLrHook()
    hook.before_run(runner)
    assert isinstance(runner.optim_wrapper, dict) and isinstance(runner._train_loop, dict) and hook.base_lrs is None


def test_warmup_iterations_follow_the_dataloader_length():
    hook = YOLOv4CSPLrHook()  # the recipe's max(3 epochs, 1000 iterations)
    assert (hook.warmup_iters(100), hook.warmup_iters(1849)) == (1000, 5547)  # 1849: COCO at batch 64
    assert hook.lr_factor(0, 300) == 1 and hook.lr_factor(300, 300) == pytest.approx(0.2)


@pytest.mark.parametrize('arguments, message', [
    (dict(lrf=1.5), 'lrf must be in [0, 1], got 1.5'),
    (dict(warmup_momentum=1.0), 'warmup_momentum must be in [0, 1), got 1.0'),
    (dict(warmup_min_iters=-1), 'warmup_min_iters must be >= 0, got -1'),
])
def test_bad_arguments_are_one_line_errors(arguments, message):
    with pytest.raises(ValueError) as error:
        YOLOv4CSPLrHook(**arguments)
    assert str(error.value) == f'YOLOv4CSPLrHook: {message}'


@pytest.mark.parametrize('setting, message', [
    (dict(param_scheduler=dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=2)),
     'remove param_scheduler from the config'),
    (dict(optimizer=dict(type='Adam', lr=1e-3)), 'use an optimizer with momentum'),
    (dict(train_cfg=dict(by_epoch=False, max_iters=4)), 'steps the lr per epoch'),
])
def test_what_it_cannot_schedule_stops_before_training(tmp_path, setting, message):
    runner, _ = toy_runner(tmp_path, **setting)
    with pytest.raises((ValueError, TypeError), match=message):
        runner.train()
    assert runner.iter == 0


def test_groups_of_another_constructor_are_refused(tmp_path):
    runner = Runner(model=GroupsModel(), work_dir=str(tmp_path),
                    train_dataloader=dict(dataset=Samples(), sampler=dict(type='DefaultSampler', shuffle=False),
                                          collate_fn=dict(type='default_collate'), batch_size=4),
                    train_cfg=dict(by_epoch=True, max_epochs=1),
                    optim_wrapper=dict(optimizer=dict(type='SGD', lr=LR0, momentum=M0)),
                    custom_hooks=[dict(type='YOLOv4CSPLrHook')], default_scope='mmdet')
    with pytest.raises(ValueError, match="set optim_wrapper.constructor='YOLOv4CSPOptimWrapperConstructor'"):
        runner.train()
