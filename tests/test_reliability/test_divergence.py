"""A diverging training stops with the iteration and the learning rate, and keeps the last good checkpoint."""
import math
import subprocess
import sys

import pytest
import torch
from mmengine.runner import Runner

from parnet_det.datasets import synthetic_coco_cfg_options
from parnet_det.engine import TrainingDivergedError

from ..test_checkpoint import ToyDataset, ToyModel
from .helpers import ROOT
from .test_entry_points import CONFIG, assert_user_error


class NaNFromSample8(ToyDataset):
    """Samples 8-11 (the third batch of 4) have a NaN label: the loss of iteration 3 is NaN."""

    def __getitem__(self, index):
        sample = super().__getitem__(index)
        return dict(sample, labels=sample['labels'] * math.nan) if 8 <= index < 12 else sample


def test_a_nan_loss_stops_training_naming_iteration_and_learning_rate(tmp_path):
    runner = Runner(
        model=ToyModel(), work_dir=str(tmp_path), default_scope='mmdet',
        train_dataloader=dict(dataset=NaNFromSample8(), sampler=dict(type='DefaultSampler', shuffle=False),
                              collate_fn=dict(type='default_collate'), batch_size=4),
        train_cfg=dict(by_epoch=False, max_iters=4), optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.05)),
        default_hooks=dict(checkpoint=dict(type='CrashSafeCheckpointHook', interval=1, by_epoch=False)),
        custom_hooks=[dict(type='DivergenceCheckHook')])
    with pytest.raises(TrainingDivergedError) as info:
        runner.train()
    assert str(info.value) == (
        f'training diverged at iteration 3 (epoch 1, learning rate 0.05): the loss is nan; the last checkpoint, '
        f'{tmp_path / "iter_2.pth"}, is kept as it was. Lower the learning rate (optim_wrapper.optimizer.lr) or '
        'clip the gradients (optim_wrapper.clip_grad=dict(max_norm=10)), then train again')
    assert sorted(p.name for p in tmp_path.glob('*.pth')) == ['iter_1.pth', 'iter_2.pth']  # no NaN model saved
    assert torch.isfinite(torch.load(tmp_path / 'iter_2.pth', weights_only=True)['state_dict']['linear.weight']).all()


@pytest.mark.slow
def test_train_tool_stops_a_diverging_detector_with_the_reason(tmp_path, tiny_coco):
    """The probe's case: lr 10 used to crash in SimOTA's assigner, saying nothing of the loss."""
    result = subprocess.run(
        [sys.executable, 'tools/train.py', CONFIG, '--work-dir', str(tmp_path), '--cfg-options',
         *synthetic_coco_cfg_options(tiny_coco['data_root']), 'optim_wrapper.optimizer.lr=10',
         'train_dataloader.dataset.pipeline.4.scale=(64,64)', 'train_dataloader.batch_size=4',
         'train_dataloader.num_workers=0', 'train_dataloader.persistent_workers=False', 'train_cfg.max_epochs=3',
         'param_scheduler.0.start_factor=1'],
        cwd=ROOT, capture_output=True, text=True)
    assert_user_error(result.returncode, result.stderr, 'error: training diverged at iteration ',
                      'no checkpoint was saved', 'Lower the learning rate')
    assert 'between 0 and 1' not in result.stderr
    assert not list(tmp_path.glob('*.pth'))
