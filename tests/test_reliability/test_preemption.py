"""SIGTERM, how clusters pre-empt jobs, ends training like Ctrl-C: the lock released and one line naming the epoch,
the iteration and the checkpoint to resume from; with save_checkpoint the iteration reached is saved first, and a
run resumed from it goes on at the next iteration, to the uninterrupted run's weights (issue 33)."""
import os
import random
import signal
import subprocess
import sys

import numpy as np
import pytest
import torch
from mmengine.hooks import Hook
from mmengine.runner import Runner

from parnet_det.apis import load_config, resume_checkpoint, setup_train_config
from parnet_det.engine import PreemptionHook, RandomStateHook, TrainingPreempted
from parnet_det.utils.work_dir_lock import LOCK_NAME

from ..test_checkpoint import RecordIters, ToyDataset, ToyModel
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
    handler_before = signal.getsignal(signal.SIGTERM)  # SIG_DFL in a plain process; pytest-xdist's worker sets one
    with pytest.raises(TrainingPreempted) as info:
        _train(tmp_path, PreemptionHook())
    # 4 iterations per epoch: iteration 6 is in epoch 2; epoch_1.pth is the last checkpoint.
    assert str(info.value) == (f'training stopped by SIGTERM in epoch 2 at iteration 6 of 12; resume from '
                               f'{tmp_path / "epoch_1.pth"} (tools/train.py ... --resume)')
    assert signal.getsignal(signal.SIGTERM) == handler_before  # the process's own handler is back


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


class NoisyToyModel(ToyModel):
    """The toy regression with noise from Python's, NumPy's and torch's generators in its loss: a resumed run
    reaches the uninterrupted run's weights only if all three are where that run had them."""

    def forward(self, inputs, labels, mode='tensor'):
        out = self.linear(inputs)
        noise = 0.1 * (torch.randn_like(out) + random.random() + float(np.random.rand()))
        return dict(loss=(out + noise - labels).square().mean()) if mode == 'loss' else out


@pytest.fixture
def deterministic():
    """mmengine's deterministic=True switches torch's deterministic algorithms on for the process: off again after."""
    yield
    torch.use_deterministic_algorithms(False)


def _train_noisy(work_dir, hooks, seed=0, resume_from=None):
    """3 epochs of 4 shuffled batches, deterministic, no workers; returns the final weights."""
    torch.manual_seed(0)
    runner = Runner(model=NoisyToyModel(), work_dir=str(work_dir), default_scope='mmdet',
                    train_dataloader=dict(dataset=ToyDataset(), sampler=dict(type='DefaultSampler', shuffle=True),
                                          collate_fn=dict(type='default_collate'), batch_size=4, num_workers=0),
                    train_cfg=dict(type='ResumableEpochBasedTrainLoop', max_epochs=3),
                    optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.05)),
                    randomness=dict(seed=seed, deterministic=True), resume=resume_from is not None,
                    load_from=resume_from,
                    default_hooks=dict(checkpoint=dict(type='CrashSafeCheckpointHook', interval=1)),
                    custom_hooks=[RandomStateHook(), *hooks])
    runner.train()
    return runner.model.state_dict()


@pytest.mark.parametrize('resume_from', ['preempted_epoch_2_iter_6.pth', 'epoch_1.pth'])
def test_a_preempted_run_resumes_at_its_iteration_to_the_uninterrupted_runs_weights(tmp_path, deterministic,
                                                                                    resume_from):
    uninterrupted = _train_noisy(tmp_path / 'whole', [])
    with pytest.raises(TrainingPreempted):
        _train_noisy(tmp_path / 'preempted', [SigtermAt(6), PreemptionHook(save_checkpoint=True)])
    iters = RecordIters()
    # Another seed: the checkpoint's (and its sampler's) must win, as its generators' states.
    resumed = _train_noisy(tmp_path / 'preempted', [iters], seed=1,
                           resume_from=str(tmp_path / 'preempted' / resume_from))
    first = 6 if resume_from.startswith('preempted') else 4
    assert iters.iters == list(range(first, 12))  # no iteration twice, none past the planned 12
    assert resumed.keys() == uninterrupted.keys()
    assert all(torch.equal(resumed[key], uninterrupted[key]) for key in uninterrupted)


def test_the_train_tool_trains_with_the_resumable_loop_and_the_random_states(tmp_path):
    cfg = setup_train_config(load_config(CONFIG), CONFIG, work_dir=str(tmp_path / 'work'))
    assert cfg.train_cfg.type == 'ResumableEpochBasedTrainLoop'
    assert 'RandomStateHook' in [hook['type'] for hook in cfg.custom_hooks]
    iteration_based = load_config(CONFIG, {'train_cfg': dict(_delete_=True, by_epoch=False, max_iters=10)})
    assert 'type' not in setup_train_config(iteration_based, CONFIG, work_dir=str(tmp_path / 'w2')).train_cfg
