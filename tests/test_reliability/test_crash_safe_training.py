"""A real mmengine Runner saving through CrashSafeCheckpointHook: a kill during a save loses nothing."""
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner

from parnet_det.apis import resume_checkpoint, use_crash_safe_checkpoints
from parnet_det.engine import CrashSafeCheckpointHook

from ..test_checkpoint import RecordIters, ToyDataset, ToyModel
from ..test_tools.test_train_test_end_to_end import CONFIG, data_options, run_tool
from .helpers import ROOT, train_big_model, truncate


def _runner(work_dir, max_iters, hook_type='CrashSafeCheckpointHook', **kwargs):
    return Runner(
        model=ToyModel(), work_dir=str(work_dir),
        train_dataloader=dict(dataset=ToyDataset(), sampler=dict(type='DefaultSampler', shuffle=True),
                              collate_fn=dict(type='default_collate'), batch_size=4),
        train_cfg=dict(by_epoch=False, max_iters=max_iters),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.05, momentum=0.9)),
        default_hooks=dict(checkpoint=dict(type=hook_type, interval=1, by_epoch=False)),
        default_scope='mmdet', randomness=dict(seed=0), **kwargs)


def _checkpoints(work_dir):
    return sorted(name for name in os.listdir(work_dir) if name.endswith('.pth') or name.startswith('.'))


def test_train_tool_config_uses_the_crash_safe_hook():
    cfg = Config.fromfile('configs/demo/yolo_parnet_tiny_synthetic.py')
    assert use_crash_safe_checkpoints(cfg).default_hooks.checkpoint.type == 'CrashSafeCheckpointHook'


def test_the_hook_writes_local_files_atomically_and_leaves_remote_ones_to_their_backend():
    assert CrashSafeCheckpointHook(interval=1).backend_args == dict(backend='atomic_local')
    assert CrashSafeCheckpointHook(interval=1, out_dir='s3://bucket/run').backend_args is None


def test_checkpoints_and_pointer_are_complete_and_nothing_else_is_left(tmp_path):
    _runner(tmp_path, max_iters=2).train()
    assert _checkpoints(tmp_path) == ['iter_1.pth', 'iter_2.pth']
    assert (tmp_path / 'last_checkpoint').read_text() == str(tmp_path / 'iter_2.pth')
    assert torch.load(tmp_path / 'iter_2.pth', weights_only=True)['meta']['iter'] == 2


def _wait_for(condition, process, what):
    while not condition():
        assert process.poll() is None, f'the run ended before {what}'
        time.sleep(0.001)


@pytest.mark.slow
def test_sigkill_during_a_large_checkpoint_write_keeps_the_previous_one(tmp_path):
    """A real kill -9 of the saving process, in the middle of writing iter_2.pth."""
    env = dict(os.environ, PYTHONPATH=ROOT)
    script = 'import sys; from tests.test_reliability.helpers import train_big_model; train_big_model(sys.argv[1], 2)'
    run = subprocess.Popen([sys.executable, '-c', script, str(tmp_path)], cwd=ROOT, env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    pointer = tmp_path / 'last_checkpoint'
    _wait_for(lambda: pointer.exists() and pointer.read_text().endswith('iter_1.pth'), run, 'iter_1.pth was saved')
    _wait_for(lambda: [n for n in os.listdir(tmp_path) if n.startswith('.iter_2.pth.')], run, 'iter_2.pth was begun')
    os.kill(run.pid, signal.SIGKILL)
    run.wait()
    partial = [n for n in os.listdir(tmp_path) if n.startswith('.iter_2.pth.')]
    assert partial, 'killed too late: iter_2.pth was complete'
    assert _checkpoints(tmp_path) == sorted(['iter_1.pth', *partial])  # no iter_2.pth under its final name
    assert pointer.read_text() == str(tmp_path / 'iter_1.pth')
    assert torch.load(tmp_path / 'iter_1.pth', weights_only=True)['meta']['iter'] == 1  # complete

    resume_from = resume_checkpoint(str(tmp_path))  # removes the partial file
    assert resume_from == str(tmp_path / 'iter_1.pth')
    assert _checkpoints(tmp_path) == ['iter_1.pth']
    train_big_model(str(tmp_path), max_iters=2, resume_from=resume_from)
    assert torch.load(tmp_path / 'iter_2.pth', weights_only=True)['meta']['iter'] == 2
    assert pointer.read_text() == str(tmp_path / 'iter_2.pth')


def test_resume_survives_a_checkpoint_truncated_mid_write(tmp_path):
    """mmengine's own hook leaves a truncated file under the final name; resume skips it."""
    _runner(tmp_path, max_iters=2, hook_type='CheckpointHook').train()
    truncate(tmp_path / 'iter_2.pth')
    resume_from = resume_checkpoint(str(tmp_path))
    assert resume_from == str(tmp_path / 'iter_1.pth')

    recorder = RecordIters()
    runner = _runner(tmp_path, max_iters=3, resume=True, load_from=resume_from, custom_hooks=[recorder])
    runner.train()
    assert recorder.iters == [1, 2]  # iteration 2 is done again, from the state after iteration 1
    assert torch.load(tmp_path / 'iter_2.pth', weights_only=True)['meta']['iter'] == 2


def test_resume_removes_what_a_killed_save_left(tmp_path):
    _runner(tmp_path, max_iters=1).train()
    # kill -9 during a save leaves the temporary file behind.
    (tmp_path / '.iter_2.pth.x1y2.tmp').write_bytes(b'half')
    assert resume_checkpoint(str(tmp_path)) == str(tmp_path / 'iter_1.pth')
    assert _checkpoints(tmp_path) == ['iter_1.pth']


@pytest.mark.slow
def test_train_tool_resumes_past_a_truncated_checkpoint(tiny_coco, tmp_path):
    """tools/train.py end to end: epoch 2's file is cut short as a kill during a plain save leaves it."""
    common = ['--work-dir', str(tmp_path), '--cfg-options', *data_options(tiny_coco['data_root'], size=64),
              'default_hooks.checkpoint.interval=1', 'train_dataloader.batch_size=4']
    run_tool('tools/train.py', CONFIG, *common, 'train_cfg.max_epochs=2')
    truncate(tmp_path / 'epoch_2.pth')
    result = run_tool('tools/train.py', CONFIG, '--resume', *common, 'train_cfg.max_epochs=3')
    log = result.stdout + result.stderr
    assert f'--resume: skipped checkpoint {tmp_path / "epoch_2.pth"} is truncated' in log
    assert 'resumed epoch: 1, iter: 2' in log
    final = torch.load(tmp_path / 'epoch_3.pth', weights_only=True)
    assert final['meta']['iter'] == 6
    assert not [name for name in os.listdir(tmp_path) if name.startswith('.')]  # no temporary file left
