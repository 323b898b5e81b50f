"""Broken checkpoint files, a training that saves large checkpoints, and the pre-flight's refusal message."""
import os
import subprocess

import pytest
import torch
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch import nn

import parnet_det  # noqa: F401  (CrashSafeCheckpointHook, also in a process that only imports this module)
from parnet_det.datasets import DatasetConfigError, check_dataset_config

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class Exploit:
    """Pickles as a call of ``touch marker``: loading it unsafely would create the marker."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (subprocess.call, (['touch', self.marker], ))


def truncate(path, keep=0.5):
    """What a process killed during a plain (non-atomic) save leaves: the file cut short."""
    with open(path, 'rb') as f:
        data = f.read()
    with open(path, 'wb') as f:
        f.write(data[:int(len(data) * keep)])


class BigModel(BaseModel):
    """A linear regression carrying a large frozen weight: 100 MB checkpoints, slow enough to be killed while
    they are written."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(2, 1)
        self.big = nn.Parameter(torch.zeros(25_000_000), requires_grad=False)

    def forward(self, inputs, labels, mode='tensor'):
        return dict(loss=(self.linear(inputs) - labels).square().mean())


def train_big_model(work_dir, max_iters, resume_from=None):
    """Train :class:`BigModel` for ``max_iters`` iterations, saving a checkpoint after each."""
    data = [dict(inputs=torch.tensor([i / 8, 1.0]), labels=torch.tensor([i / 4])) for i in range(8)]
    Runner(model=BigModel(), work_dir=work_dir, default_scope='mmdet', resume=resume_from is not None,
           load_from=resume_from, optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
           train_dataloader=dict(dataset=data, sampler=dict(type='DefaultSampler', shuffle=False),
                                 collate_fn=dict(type='default_collate'), batch_size=4),
           train_cfg=dict(by_epoch=False, max_iters=max_iters),
           default_hooks=dict(checkpoint=dict(type='CrashSafeCheckpointHook', interval=1, by_epoch=False))).train()


def preflight_error(cfg):
    """The one-line message of the pre-flight's refusal of ``cfg``'s train and val data."""
    with pytest.raises(DatasetConfigError) as info:
        check_dataset_config(cfg, splits=('train', 'val'))
    return str(info.value)
