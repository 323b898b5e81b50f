"""Broken checkpoints of every kind the probe table found, and a way to run the tools in-process."""
import os
import runpy
import subprocess
import sys

import pytest
import torch

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


def run_tool(capsys, tool, *args):
    """Run ``tools/<tool>`` in this process; returns (exit code, stdout, stderr).

    An exception other than SystemExit propagates: a traceback is a failure of the test.
    """
    argv = sys.argv
    sys.argv = [tool, *map(str, args)]
    try:
        runpy.run_path(os.path.join(ROOT, 'tools', tool), run_name='__main__')
        code = 0
    except SystemExit as exit_:
        code = exit_.code
    finally:
        sys.argv = argv
    out, err = capsys.readouterr()
    return code, out, err
