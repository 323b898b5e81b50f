"""One training run per work dir: an exclusive lock file held for the whole run."""
import contextlib
import errno
import fcntl
import logging
import os
import os.path as osp
import socket
import time
from typing import Iterator

from mmengine.logging import print_log

LOCK_NAME = '.train.lock'


class WorkDirInUseError(RuntimeError):
    """Another live process holds the work dir's lock."""


class WorkDirNotWritableError(PermissionError):
    """The work dir cannot be created or written."""


def _read_holder(fd: int) -> str:
    os.lseek(fd, 0, os.SEEK_SET)
    return os.read(fd, 4096).decode(errors='replace').strip()


def _open_locked(path: str, work_dir: str) -> int:
    """Open ``path`` and take its exclusive ``flock``; retry if a releasing run removed the file meanwhile."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd) or 'a process that is starting'
            os.close(fd)
            raise WorkDirInUseError(
                f'work dir {work_dir} is in use by another training run ({holder}); two runs in one work dir '
                'would mix their logs and checkpoints: wait for it to end, or give this run another --work-dir')
        # The holder before us unlinks the file while still holding it: our lock is then on a
        # name nobody else sees. Lock the file that is there now instead.
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(path))
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)


@contextlib.contextmanager
def work_dir_lock(work_dir: str) -> Iterator[str]:
    """Hold ``WORK_DIR/.train.lock`` (``fcntl.flock``, exclusive) while the body runs; yields its path.

    The file names the holder (pid, host, start time). A second run raises
    :class:`WorkDirInUseError` naming it. The kernel drops a ``flock`` when its
    process dies, so a lock file that can be locked but still names a holder was
    left by a run that was killed: it is taken over with a message. The file is
    removed on any exit of the body. Creates ``work_dir`` (and removes it again
    if it is still empty then); raises :class:`WorkDirNotWritableError` if it cannot.
    """
    path = osp.join(work_dir, LOCK_NAME)
    created = not osp.isdir(work_dir)
    try:
        os.makedirs(work_dir, exist_ok=True)
        fd = _open_locked(path, work_dir)
    except OSError as err:
        if err.errno not in (errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOTDIR, errno.EEXIST):
            raise
        raise WorkDirNotWritableError(f'cannot write to work dir {work_dir} ({err.strerror}); '
                                      'choose a writable --work-dir') from err
    try:
        stale = _read_holder(fd)
        if stale:
            print_log(f'{path}: taking over the lock of a run that was killed ({stale}; that process no longer '
                      'holds it)', logger='current', level=logging.WARNING)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f'pid {os.getpid()} on {socket.gethostname()}, started '
                      f'{time.strftime("%Y-%m-%d %H:%M:%S")}\n'.encode(), 0)
        yield path
    finally:
        # Remove the name before dropping the lock: a run that opened it meanwhile retries (above).
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)
        os.close(fd)
        if created:  # a run stopped before writing anything leaves no empty work dir behind
            with contextlib.suppress(OSError):
                os.rmdir(work_dir)
