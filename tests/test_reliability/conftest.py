"""Broken checkpoints of every kind the probe table found."""
import os

import pytest
import torch

from .helpers import Exploit


@pytest.fixture
def broken_checkpoints(tmp_path):
    """``{kind: (path, expected error message)}`` for each way a checkpoint file can be unusable."""
    good = tmp_path / 'good.pth'
    torch.save({'state_dict': {'w': torch.zeros(1000)}, 'meta': {}}, good)
    truncated = tmp_path / 'truncated.pth'
    truncated.write_bytes(good.read_bytes()[:good.stat().st_size // 2])
    empty = tmp_path / 'empty.pth'
    empty.write_bytes(b'')
    random_bytes = tmp_path / 'random.pth'
    random_bytes.write_bytes(os.urandom(4096))
    unsafe = tmp_path / 'unsafe.pth'
    torch.save({'state_dict': {'w': torch.zeros(1)}, 'meta': Exploit(str(tmp_path / 'pwned'))}, unsafe)
    return dict(missing=(tmp_path / 'missing.pth', 'does not exist'),
                empty=(empty, r'is empty \(0 bytes\)'),
                truncated=(truncated, 'is truncated'),
                random_bytes=(random_bytes, 'is not a PyTorch checkpoint'),
                unsafe=(unsafe, 'could execute code'))
