"""One training run per work dir: a second run stops at once, naming the first; nothing of the first is touched."""
import os
import signal
import subprocess
import sys

import pytest

from parnet_det.apis import exclusive_work_dir, resume_checkpoint
from parnet_det.datasets import synthetic_coco_cfg_options
from parnet_det.utils.work_dir_lock import LOCK_NAME, LockFileError, WorkDirInUseError, work_dir_lock

from ..helpers import run_tool
from .helpers import ROOT

CONFIG = 'configs/demo/yolo_parnet_tiny_synthetic.py'
# A first run, as far as the lock goes: holds the work dir's lock until killed.
HOLDER = ('import sys, time\nfrom parnet_det.utils.work_dir_lock import work_dir_lock\n'
          'with work_dir_lock(sys.argv[1]):\n    print("held", flush=True)\n    time.sleep(600)\n')


@pytest.fixture
def holder(tmp_path):
    """A live process holding ``tmp_path / 'work'``, whose work dir already holds a first run's files."""
    work_dir = tmp_path / 'work'
    process = subprocess.Popen([sys.executable, '-c', HOLDER, str(work_dir)], cwd=ROOT, stdout=subprocess.PIPE,
                               text=True, env=dict(os.environ, PYTHONPATH=ROOT))
    assert process.stdout.readline() == 'held\n'
    (work_dir / 'epoch_1.pth').write_bytes(b'first run')
    (work_dir / '20261129_000000').mkdir()
    (work_dir / '20261129_000000' / 'scalars.json').write_text('{"iter": 1}\n')
    yield process, work_dir
    process.kill()
    process.wait()


def _snapshot(directory):
    return {os.path.relpath(os.path.join(dirpath, name), directory):
            (os.stat(os.path.join(dirpath, name)).st_mtime_ns, open(os.path.join(dirpath, name), 'rb').read())
            for dirpath, _, names in os.walk(directory) for name in names}


@pytest.mark.parametrize('resume', [[], ['--resume']])
def test_a_second_training_on_a_held_work_dir_stops_naming_the_holder(capsys, tiny_coco, holder, resume):
    process, work_dir = holder
    (work_dir / '.epoch_2.pth.ab12cd34.tmp').write_bytes(b'the first run is saving')  # --resume would clean it
    before = _snapshot(work_dir)
    code, out, err = run_tool(capsys, 'train.py', CONFIG, *resume, '--work-dir', work_dir, '--cfg-options',
                              *synthetic_coco_cfg_options(tiny_coco['data_root']))
    assert code == 2
    assert err.splitlines()[-1].startswith(f'error: work dir {work_dir} is in use by another training run '
                                           f'(pid {process.pid} on ')
    assert 'give this run another --work-dir' in err and 'Traceback' not in err
    assert _snapshot(work_dir) == before  # the first run's files, its lock and its temporary file untouched
    assert process.poll() is None


def test_a_lock_left_by_a_killed_run_is_taken_over_with_a_message(tmp_path, warnings_logged):
    work_dir = tmp_path / 'work'
    process = subprocess.Popen([sys.executable, '-c', HOLDER, str(work_dir)], cwd=ROOT, stdout=subprocess.PIPE,
                               text=True, env=dict(os.environ, PYTHONPATH=ROOT))
    assert process.stdout.readline() == 'held\n'
    os.kill(process.pid, signal.SIGKILL)  # no clean-up: the lock file still names it
    process.wait()
    assert f'pid {process.pid} on ' in (work_dir / LOCK_NAME).read_text()
    with work_dir_lock(str(work_dir)):
        assert (work_dir / LOCK_NAME).read_text().startswith(f'pid {os.getpid()} on ')
    assert any('taking over a lock that no process holds' in w and f'pid {process.pid} on ' in w
               for w in warnings_logged), warnings_logged
    assert not (work_dir / LOCK_NAME).exists()


def test_the_lock_is_released_on_any_exit(tmp_path):
    work_dir = tmp_path / 'work'
    work_dir.mkdir()
    with pytest.raises(KeyboardInterrupt):
        with work_dir_lock(str(work_dir)):
            with pytest.raises(WorkDirInUseError, match='is in use by another training run'):
                with work_dir_lock(str(work_dir)):
                    pass
            raise KeyboardInterrupt
    assert os.listdir(work_dir) == []
    with work_dir_lock(str(work_dir)):
        pass


def test_an_unwritable_work_dir_stops_before_anything_is_built(capsys, tiny_coco, tmp_path):
    blocker = tmp_path / 'a_file'
    blocker.write_text('')
    code, _, err = run_tool(capsys, 'train.py', CONFIG, '--work-dir', blocker / 'work', '--cfg-options',
                            *synthetic_coco_cfg_options(tiny_coco['data_root']))
    assert code == 2 and err.splitlines()[-1] == (f'error: cannot write to work dir {blocker / "work"} '
                                                  '(Not a directory); choose a writable --work-dir')


def test_only_rank_0_of_a_distributed_run_takes_the_lock(tmp_path, monkeypatch):
    work_dir = str(tmp_path / 'work')
    with exclusive_work_dir(work_dir, 'pytorch'):  # rank 0 (RANK unset: 0)
        monkeypatch.setenv('RANK', '1')
        with exclusive_work_dir(work_dir, 'pytorch'):  # another rank of the same run shares the work dir
            pass
        (tmp_path / 'work' / '.epoch_2.pth.ab12cd34.tmp').write_bytes(b'rank 0 is saving')
        assert resume_checkpoint(work_dir, remove_partial=False) is None
        assert (tmp_path / 'work' / '.epoch_2.pth.ab12cd34.tmp').exists()
        monkeypatch.setenv('RANK', '0')
        with pytest.raises(WorkDirInUseError):
            with exclusive_work_dir(work_dir, 'pytorch'):
                pass


def _plant_symlink(lock, target):
    lock.symlink_to(target)


def _plant_directory(lock, target):
    lock.mkdir()


def _plant_fifo(lock, target):
    os.mkfifo(lock)


@pytest.mark.parametrize('plant, kind', [(_plant_symlink, 'a symlink'), (_plant_directory, 'a directory'),
                                         (_plant_fifo, 'a pipe')])
def test_a_lock_that_is_not_a_regular_file_is_refused_and_nothing_is_written_through_it(tmp_path, plant, kind):
    work_dir = tmp_path / 'work'
    work_dir.mkdir()
    target = tmp_path / 'precious.txt'
    target.write_text('pid 1 on elsewhere\nnot yours to truncate\n')
    mtime = target.stat().st_mtime_ns
    plant(work_dir / LOCK_NAME, target)
    with pytest.raises(LockFileError) as info:
        with work_dir_lock(str(work_dir)):
            pytest.fail('the lock was taken')
    assert str(info.value) == (f'{work_dir / LOCK_NAME} is {kind}, not the lock file a training run writes; nothing '
                               'was written through it: remove it (or choose another --work-dir) and run again')
    assert target.read_text() == 'pid 1 on elsewhere\nnot yours to truncate\n' and target.stat().st_mtime_ns == mtime
    assert os.path.lexists(work_dir / LOCK_NAME)  # left for the user to look at


def test_train_tool_stops_on_a_planted_lock_symlink_with_one_line(capsys, tiny_coco, tmp_path):
    work_dir = tmp_path / 'work'
    work_dir.mkdir()
    target = tmp_path / 'precious.txt'
    target.write_bytes(b'secret content')
    (work_dir / LOCK_NAME).symlink_to(target)
    code, _, err = run_tool(capsys, 'train.py', CONFIG, '--work-dir', work_dir, '--cfg-options',
                            *synthetic_coco_cfg_options(tiny_coco['data_root']))
    assert code == 2 and 'Traceback' not in err
    assert err.splitlines()[-1] == (f'error: {work_dir / LOCK_NAME} is a symlink, not the lock file a training run '
                                    'writes; nothing was written through it: remove it (or choose another '
                                    '--work-dir) and run again')
    assert 'secret content' not in err and target.read_bytes() == b'secret content'


def test_a_stale_lock_is_named_in_printable_text_cut_to_a_line(tmp_path, warnings_logged):
    work_dir = tmp_path / 'work'
    work_dir.mkdir()
    (work_dir / LOCK_NAME).write_bytes(b'pid 1 \x1b[2J\x1b]0;owned\x07' + b'x' * 4000)
    with work_dir_lock(str(work_dir)):
        pass
    message = next(w for w in warnings_logged if 'taking over a lock that no process holds' in w)
    assert '\x1b' not in message and '\x07' not in message
    assert 'it names pid 1 ?[2J?]0;owned?xxx' in message and len(message) < 400 and '...' in message
