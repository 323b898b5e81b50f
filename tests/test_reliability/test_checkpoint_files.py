"""One checkpoint reader with a distinct error for each broken kind; crash-safe writes; resume fallback."""
import argparse
import os

import pytest
import torch
import torch.nn as nn
from mmengine.fileio import get_file_backend
from mmengine.runner.checkpoint import _load_checkpoint

from parnet_det.convert import load_official_state_dict
from parnet_det.utils import fileio
from parnet_det.utils.checkpoint import (
    CheckpointMismatchError,
    CheckpointNotFoundError,
    CorruptCheckpointError,
    UnsafeCheckpointError,
    find_resume_checkpoint,
    load_checkpoint_file,
    load_weights_strictly,
)

from .helpers import Exploit, truncate

ERRORS = dict(missing=CheckpointNotFoundError, empty=CorruptCheckpointError, truncated=CorruptCheckpointError,
              random_bytes=CorruptCheckpointError, unsafe=UnsafeCheckpointError)


@pytest.mark.parametrize('kind', sorted(ERRORS))
def test_each_broken_kind_has_its_own_error(broken_checkpoints, kind):
    path, message = broken_checkpoints[kind]
    with pytest.raises(ERRORS[kind], match=message) as info:
        load_checkpoint_file(str(path))
    assert str(path) in str(info.value)
    if kind != 'unsafe':  # only real pickled code is called unsafe
        assert not isinstance(info.value, UnsafeCheckpointError) and 'execute code' not in str(info.value)
    assert not (path.parent / 'pwned').exists()


@pytest.mark.parametrize('kind', sorted(ERRORS))
def test_mmengine_loads_go_through_the_same_reader(broken_checkpoints, kind):
    path, message = broken_checkpoints[kind]
    with pytest.raises(ERRORS[kind], match=message):
        _load_checkpoint(str(path), map_location='cpu')


@pytest.mark.parametrize('kind', sorted(ERRORS))
def test_the_converter_uses_the_reader(broken_checkpoints, kind):
    path, message = broken_checkpoints[kind]
    with pytest.raises(ERRORS[kind], match=message):
        load_official_state_dict(str(path))


def test_the_converter_still_allows_timm_training_args(tmp_path):
    path = tmp_path / 'official.pth.tar'
    torch.save({'state_dict': {'inits.0.w': torch.ones(1)}, 'args': argparse.Namespace(lr=0.1)}, path)
    assert list(load_official_state_dict(str(path))) == ['inits.0.w']
    with pytest.raises(UnsafeCheckpointError):  # the Namespace is allowed for the converter only
        load_checkpoint_file(str(path))


def test_atomic_write_leaves_the_old_file_when_interrupted(tmp_path):
    target = tmp_path / 'epoch_1.pth'
    target.write_bytes(b'old')
    with pytest.raises(KeyboardInterrupt):
        with fileio.atomic_write(str(target)) as f:
            f.write(b'half of the new')
            raise KeyboardInterrupt  # a kill during the write
    assert target.read_bytes() == b'old'
    assert os.listdir(tmp_path) == ['epoch_1.pth']  # no temporary file left


def test_atomic_write_without_overwrite_keeps_an_existing_file(tmp_path):
    target = tmp_path / 'a.jpg'
    with fileio.atomic_write(str(target), overwrite=False) as f:
        f.write(b'first')
    with pytest.raises(FileExistsError):
        with fileio.atomic_write(str(target), overwrite=False) as f:
            f.write(b'second')
    assert target.read_bytes() == b'first'
    assert os.listdir(tmp_path) == ['a.jpg']  # no temporary file left


def test_strict_json_refuses_nan_and_infinities():
    assert fileio.strict_json(dict(a=[1.5, None])) == '{"a": [1.5, null]}'
    for value in (float('nan'), float('inf'), -float('inf')):
        with pytest.raises(ValueError, match='JSON has no NaN or infinity'):
            fileio.strict_json(dict(bbox=[0.0, value]))


def test_atomic_backend_writes_complete_files(tmp_path):
    backend = get_file_backend(str(tmp_path), backend_args=dict(backend='atomic_local'))
    backend.put(b'x' * 1000, str(tmp_path / 'sub' / 'iter_1.pth'))
    backend.put_text('iter_1.pth', str(tmp_path / 'last_checkpoint'))
    assert (tmp_path / 'sub' / 'iter_1.pth').read_bytes() == b'x' * 1000
    assert (tmp_path / 'last_checkpoint').read_text() == 'iter_1.pth'
    assert sorted(os.listdir(tmp_path)) == ['last_checkpoint', 'sub']


@pytest.mark.parametrize('where', ['missing_parent', 'parent_is_a_file', 'is_a_directory'])
def test_unwritable_outputs_are_refused_before_the_work(tmp_path, where):
    (tmp_path / 'file').write_text('')
    path = dict(missing_parent=tmp_path / 'no' / 'out.pth', parent_is_a_file=tmp_path / 'file' / 'out.pth',
                is_a_directory=tmp_path)[where]
    with pytest.raises(OSError, match=f'cannot write {path}'):
        fileio.check_writable_file(str(path))


def _work_dir(tmp_path, steps=(1, 2)):
    tmp_path.mkdir(exist_ok=True)
    for step in steps:
        torch.save({'state_dict': {'w': torch.full((100, ), float(step))}, 'meta': {'epoch': step}},
                   tmp_path / f'epoch_{step}.pth')
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / f'epoch_{steps[-1]}.pth'))
    return tmp_path


def test_resume_falls_back_from_a_truncated_checkpoint(tmp_path):
    work_dir = _work_dir(tmp_path)
    truncate(work_dir / 'epoch_2.pth')
    path, skipped = find_resume_checkpoint(str(work_dir))
    assert path == str(work_dir / 'epoch_1.pth')
    assert len(skipped) == 1 and 'epoch_2.pth is truncated' in skipped[0]


def test_resume_skips_an_empty_pointer(tmp_path):
    work_dir = _work_dir(tmp_path)
    (work_dir / 'last_checkpoint').write_text('')
    path, skipped = find_resume_checkpoint(str(work_dir))
    assert path == str(work_dir / 'epoch_2.pth') and 'last_checkpoint is empty' in skipped[0]


def test_resume_finds_the_checkpoint_of_a_moved_work_dir(tmp_path):
    old = _work_dir(tmp_path / 'old')
    moved = tmp_path / 'moved'
    os.rename(old, moved)
    (moved / 'epoch_3.pth').write_bytes(b'')  # a newer but empty file is not preferred over the pointer's
    path, skipped = find_resume_checkpoint(str(moved))
    assert path == str(moved / 'epoch_2.pth') and skipped == []


def test_resume_reports_every_broken_candidate(tmp_path):
    work_dir = _work_dir(tmp_path)
    truncate(work_dir / 'epoch_2.pth')
    (work_dir / 'epoch_1.pth').write_bytes(b'')
    path, skipped = find_resume_checkpoint(str(work_dir))
    assert path is None and len(skipped) == 2


class Net(nn.Module):

    def __init__(self, classes=5):
        super().__init__()
        self.backbone = nn.Conv2d(3, 8, 3)
        self.cls = nn.Conv2d(8, classes, 1)


def test_a_mismatched_checkpoint_names_the_first_differences():
    checkpoint = {'state_dict': {**Net(80).state_dict(), 'extra.weight': torch.zeros(1)}, 'meta': {}}
    with pytest.raises(CheckpointMismatchError) as info:
        load_weights_strictly(Net(5), checkpoint, 'coco.pth')
    message = str(info.value)
    assert message.startswith('coco.pth does not fit the model of this config')
    assert '1 unexpected keys: extra.weight' in message
    assert '2 shape differences: cls.weight: checkpoint (80, 8, 1, 1), model (5, 8, 1, 1)' in message


def test_a_fitting_checkpoint_is_loaded():
    source, target = Net(), Net()
    load_weights_strictly(target, {'state_dict': {f'module.{k}': v for k, v in source.state_dict().items()}}, 'x')
    assert torch.equal(target.cls.weight, source.cls.weight)


def test_a_deploy_checkpoint_gets_its_own_hint():
    with pytest.raises(CheckpointMismatchError, match='it is a deploy checkpoint'):
        load_weights_strictly(Net(), {'state_dict': {}, 'meta': {'deploy': True}}, 'deploy.pth')


def test_atomic_writes_get_the_permissions_of_a_plain_write(tmp_path):
    with open(tmp_path / 'plain', 'wb') as f:
        f.write(b'x')
    with fileio.atomic_write(str(tmp_path / 'atomic')) as f:
        f.write(b'x')
    assert (tmp_path / 'atomic').stat().st_mode == (tmp_path / 'plain').stat().st_mode


class SystemCall:
    """Pickles as ``os.system('touch marker')``: torch 2.14 refuses the os module (``posix`` on Linux) in other
    words ("... whose module posix is blocked") than a global merely not allowed."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f'touch {self.marker}', ))


@pytest.mark.parametrize('payload', ['subprocess.call', 'os.system'])
@pytest.mark.parametrize('form', ['zip', 'legacy'])
def test_a_checkpoint_carrying_code_is_refused_as_code_naming_it_and_never_advising_weights_only_false(
        tmp_path, payload, form):
    marker = tmp_path / 'pwned'
    code = Exploit(str(marker)) if payload == 'subprocess.call' else SystemCall(str(marker))
    path = tmp_path / 'unsafe.pth'
    torch.save({'state_dict': {'w': torch.zeros(1)}, 'meta': code}, path, _use_new_zipfile_serialization=form == 'zip')
    with pytest.raises(UnsafeCheckpointError) as info:
        load_checkpoint_file(str(path))
    message = str(info.value)
    named = 'subprocess.call' if payload == 'subprocess.call' else f'{os.system.__module__}.system'
    assert f'it contains code or Python objects that are not weights ({named})' in message
    assert 'weights_only' not in message and 'damaged' not in message
    assert not marker.exists()
