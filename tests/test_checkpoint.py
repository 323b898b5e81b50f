import subprocess
import sys

import pytest
import torch
import torch.nn as nn
from mmengine.hooks import Hook
from mmengine.model import BaseModel
from mmengine.runner import Runner
from mmengine.runner.checkpoint import _load_checkpoint
from torch.utils.data import Dataset

from parnet_det.utils.checkpoint import UnsafeCheckpointError


class ToyModel(BaseModel):

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(2, 1)

    def forward(self, inputs, labels, mode='tensor'):
        out = self.linear(inputs)
        return dict(loss=(out - labels).square().mean()) if mode == 'loss' else out


class ToyDataset(Dataset):

    def __len__(self):
        return 16

    def __getitem__(self, index):
        x = torch.tensor([index / 16, 1.0])
        return dict(inputs=x, labels=x[:1] * 3)


class RecordIters(Hook):

    def __init__(self):
        self.iters = []

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        self.iters.append(runner.iter)


def _runner(work_dir, max_iters, **kwargs):
    return Runner(
        model=ToyModel(),
        work_dir=str(work_dir),
        train_dataloader=dict(dataset=ToyDataset(), sampler=dict(type='DefaultSampler', shuffle=True),
                              collate_fn=dict(type='default_collate'), batch_size=4),
        train_cfg=dict(by_epoch=False, max_iters=max_iters),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.05, momentum=0.9)),
        param_scheduler=dict(type='LinearLR', start_factor=0.5, by_epoch=False, begin=0, end=4),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=2, by_epoch=False),
                           logger=dict(type='LoggerHook', interval=1)),
        randomness=dict(seed=0),
        **kwargs)


def test_runner_resumes_from_its_own_checkpoint(tmp_path):
    first = _runner(tmp_path, max_iters=2)
    first.train()
    checkpoint = tmp_path / 'iter_2.pth'
    assert checkpoint.is_file()
    saved = torch.load(checkpoint, weights_only=True)  # the allow-list covers all of it
    assert saved['meta']['iter'] == 2 and 'message_hub' in saved

    recorder = RecordIters()
    second = _runner(tmp_path, max_iters=4, resume=True, custom_hooks=[recorder])
    second.train()
    assert recorder.iters == [2, 3]
    assert second.iter == 4
    momentum = second.optim_wrapper.optimizer.state_dict()['state'][0]['momentum_buffer']
    assert momentum is not None


def test_plain_weights_only_load_fails_without_the_allow_list(tmp_path):
    """Guards the test above: the allow-list is what makes resuming work."""
    runner = _runner(tmp_path, max_iters=2)
    runner.train()
    code = ('import torch, sys\n'
            'try:\n'
            f'    torch.load({str(tmp_path / "iter_2.pth")!r}, weights_only=True)\n'
            'except Exception as err:\n'
            '    print(type(err).__name__)\n')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True).stdout
    assert 'UnpicklingError' in out


class Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (subprocess.call, (['touch', self.marker],))


def test_checkpoint_with_pickled_code_is_refused(tmp_path):
    marker = tmp_path / 'pwned'
    path = tmp_path / 'malicious.pth'
    torch.save({'state_dict': {'w': torch.zeros(1)}, 'meta': Exploit(str(marker))}, path)
    with pytest.raises(UnsafeCheckpointError, match=r'refused to load checkpoint .*malicious\.pth'):
        _load_checkpoint(str(path), map_location='cpu')
    assert not marker.exists()


def test_missing_checkpoint_names_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match='nothing_here.pth'):
        _load_checkpoint(str(tmp_path / 'nothing_here.pth'))
