"""A real mmengine Runner saving through CrashSafeCheckpointHook: a kill during a save loses nothing."""
import os

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner

from parnet_det.apis import resume_checkpoint, use_crash_safe_checkpoints
from parnet_det.engine import CrashSafeCheckpointHook
from parnet_det.utils import fileio

from ..test_checkpoint import RecordIters, ToyDataset, ToyModel
from ..test_tools.test_train_test_end_to_end import CONFIG, data_options, run_tool
from .helpers import truncate


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


@pytest.mark.parametrize('killed_at', ['iter_3.pth', 'last_checkpoint'])
def test_a_kill_during_a_save_keeps_the_previous_checkpoint(tmp_path, monkeypatch, killed_at):
    _runner(tmp_path, max_iters=2).train()
    real_replace = os.replace

    def killed_before_the_rename(src, dst):
        if str(dst).endswith(killed_at):
            raise KeyboardInterrupt  # the process dies with the new file only in its temporary file
        real_replace(src, dst)

    monkeypatch.setattr(fileio.os, 'replace', killed_before_the_rename)
    with pytest.raises(KeyboardInterrupt):
        _runner(tmp_path, max_iters=3, resume=True).train()
    monkeypatch.undo()
    expected = ['iter_1.pth', 'iter_2.pth'] + (['iter_3.pth'] if killed_at == 'last_checkpoint' else [])
    assert _checkpoints(tmp_path) == expected  # complete files only, no temporary file left
    assert (tmp_path / 'last_checkpoint').read_text() == str(tmp_path / 'iter_2.pth')


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
    # kill -9 during a save leaves the temporary file (and the hook's scratch directory) behind.
    (tmp_path / '.iter_2.pth.x1y2.tmp').write_bytes(b'half')
    (tmp_path / '.last_checkpoint.z3.tmp').mkdir()
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
