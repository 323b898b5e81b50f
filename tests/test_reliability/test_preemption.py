"""SIGTERM, how clusters pre-empt jobs, ends training like Ctrl-C: the lock released and one line naming the epoch,
the iteration and the checkpoint to resume from; with save_checkpoint the iteration reached is saved first."""
import os
import signal
import subprocess
import sys

import pytest
import torch
from mmengine.hooks import Hook
from mmengine.runner import Runner

from parnet_det.apis import resume_checkpoint
from parnet_det.engine import PreemptionHook, TrainingPreempted
from parnet_det.utils.work_dir_lock import LOCK_NAME

from ..test_checkpoint import ToyDataset, ToyModel
from ..test_tools.test_train_test_end_to_end import CONFIG, data_options
from .helpers import ROOT


class SigtermAt(Hook):
    """Sends this process SIGTERM during iteration ``iteration`` (1-based), as a cluster's scheduler would."""

    def __init__(self, iteration):
        self.iteration = iteration

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        if runner.iter + 1 == self.iteration:
            os.kill(os.getpid(), signal.SIGTERM)


def _train(work_dir, preemption_hook):
    Runner(model=ToyModel(), work_dir=str(work_dir), default_scope='mmdet',
           train_dataloader=dict(dataset=ToyDataset(), sampler=dict(type='DefaultSampler', shuffle=False),
                                 collate_fn=dict(type='default_collate'), batch_size=4),
           train_cfg=dict(by_epoch=True, max_epochs=3), optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.05)),
           default_hooks=dict(checkpoint=dict(type='CrashSafeCheckpointHook', interval=1)),
           custom_hooks=[SigtermAt(6), preemption_hook]).train()


def test_sigterm_stops_after_the_iteration_naming_the_last_checkpoint(tmp_path):
    with pytest.raises(TrainingPreempted) as info:
        _train(tmp_path, PreemptionHook())
    # 4 iterations per epoch: iteration 6 is in epoch 2; epoch_1.pth is the last checkpoint.
    assert str(info.value) == (f'training stopped by SIGTERM in epoch 2 at iteration 6 of 12; resume from '
                               f'{tmp_path / "epoch_1.pth"} (tools/train.py ... --resume)')
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL  # the process's own handler is back


def test_sigterm_with_save_checkpoint_saves_the_iteration_reached_and_resume_takes_it(tmp_path):
    with pytest.raises(TrainingPreempted) as info:
        _train(tmp_path, PreemptionHook(save_checkpoint=True))
    saved = tmp_path / 'preempted_epoch_2_iter_6.pth'
    assert str(info.value) == (f'training stopped by SIGTERM in epoch 2 at iteration 6 of 12; resume from {saved} '
                               '(tools/train.py ... --resume)')
    assert torch.load(saved, weights_only=False)['meta']['iter'] == 6
    assert resume_checkpoint(str(tmp_path)) == str(saved)


@pytest.mark.slow
def test_sigterm_ends_the_train_tool_with_one_line_and_releases_the_lock(tiny_coco, tmp_path):
    work_dir = tmp_path / 'work'
    stderr = tmp_path / 'stderr.txt'
    with open(stderr, 'w') as err:
        run = subprocess.Popen([sys.executable, 'tools/train.py', CONFIG, '--work-dir', str(work_dir), '--cfg-options',
                                *data_options(tiny_coco['data_root'], size=64), 'train_cfg.max_epochs=50',
                                'default_hooks.logger.interval=1'],
                               cwd=ROOT, env=dict(os.environ, PYTHONPATH=ROOT), stdout=subprocess.PIPE, stderr=err,
                               text=True)
        for line in run.stdout:  # the first logged iteration: the hook is installed
            if 'Epoch(train)' in line:
                break
        assert (work_dir / LOCK_NAME).exists()
        run.send_signal(signal.SIGTERM)
        run.stdout.read()
        assert run.wait(timeout=120) == 128 + signal.SIGTERM
    last = stderr.read_text().splitlines()[-1]
    assert last.startswith('error: training stopped by SIGTERM in epoch '), last
    assert last.endswith(('--resume)', 'no checkpoint was saved yet: a rerun starts from scratch')), last
    assert not (work_dir / LOCK_NAME).exists()
