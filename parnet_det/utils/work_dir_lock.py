"""One run per work dir (training, a benchmark matrix, inference into a folder): an exclusive lock file held for
the whole run."""
import contextlib
import errno
import fcntl
import logging
import os
import os.path as osp
import socket
import stat
import time
from typing import Iterator

from mmengine.logging import print_log

LOCK_NAME = '.train.lock'
# The holder named in messages is cut to this: the file may hold anything, up to megabytes.
_HOLDER_MAX_CHARS = 200


class WorkDirInUseError(RuntimeError):
    """Another live process holds the work dir's lock."""


class WorkDirNotWritableError(PermissionError):
    """The work dir cannot be created or written."""


class LockFileError(WorkDirNotWritableError):
    """The work dir's lock file is not a regular file (a symlink, a folder, a pipe, ...)."""


def _read_holder(fd: int) -> str:
    """The holder the lock file names, as printable text cut to a line (the file could hold anything)."""
    os.lseek(fd, 0, os.SEEK_SET)
    text = os.read(fd, _HOLDER_MAX_CHARS + 1).decode(errors='replace').strip()
    shown = ''.join(char if char.isprintable() else '?' for char in text)  # no terminal control sequences
    return shown[:_HOLDER_MAX_CHARS] + ('...' if len(shown) > _HOLDER_MAX_CHARS else '')


def _open_lock_file(path: str, what: str, option: str) -> int:
    """Open ``path`` for reading and writing, created if missing, only if it is a regular file.

    Not through a symlink (``O_NOFOLLOW``): a planted ``.train.lock`` link would
    make the run truncate the file it points to. Non-blocking, so that a pipe
    planted there is refused rather than waited on.
    """
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, 0o666)
    except OSError as err:
        if err.errno not in (errno.ELOOP, errno.EISDIR, errno.ENXIO):
            raise
        kind = {errno.ELOOP: 'a symlink', errno.EISDIR: 'a directory'}.get(err.errno, 'a socket')
        raise LockFileError(_not_a_lock_file(path, kind, what, option)) from err
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise LockFileError(_not_a_lock_file(path, 'a pipe' if stat.S_ISFIFO(mode) else 'a device or socket', what,
                                            option))
    os.set_blocking(fd, True)
    return fd


def _not_a_lock_file(path: str, kind: str, what: str, option: str) -> str:
    return (f'{path} is {kind}, not the lock file a {what} writes; nothing was written through it: '
            f'remove it (or choose another {option}) and run again')


def _open_locked(path: str, work_dir: str, what: str, option: str) -> int:
    """Open ``path`` and take its exclusive ``flock``; retry if a releasing run removed the file meanwhile."""
    while True:
        fd = _open_lock_file(path, what, option)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd) or 'a process that is starting'
            os.close(fd)
            raise WorkDirInUseError(
                f'{option.strip("-").replace("-", " ")} {work_dir} is in use by another {what} ({holder}); two runs '
                f'in one folder would mix their outputs: wait for it to end, or give this run another {option}')
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
def work_dir_lock(work_dir: str, name: str = LOCK_NAME, what: str = 'training run',
                  option: str = '--work-dir') -> Iterator[str]:
    """Hold ``WORK_DIR/<name>`` (``.train.lock``; ``fcntl.flock``, exclusive) while the body runs; yields its path.
    The messages name the run as ``what`` and its folder by the tool's ``option``.

    The file names the holder (pid, host, start time). A second run raises
    :class:`WorkDirInUseError` naming it. The kernel drops a ``flock`` when its
    process dies, so a lock file that can be locked but still names a holder was
    left by a run that was killed: it is taken over with a message. A lock file
    that is not a regular file (a symlink, a folder) raises :class:`LockFileError`
    and nothing is written through it. The file is
    removed on any exit of the body. Creates ``work_dir`` (and removes it again
    if it is still empty then); raises :class:`WorkDirNotWritableError` if it cannot.
    """
    path = osp.join(work_dir, name)
    created = not osp.isdir(work_dir)
    try:
        os.makedirs(work_dir, exist_ok=True)
        fd = _open_locked(path, work_dir, what, option)
    except OSError as err:
        if err.errno not in (errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOTDIR, errno.EEXIST):
            raise
        raise WorkDirNotWritableError(f'cannot write to {option.strip("-").replace("-", " ")} {work_dir} '
                                      f'({err.strerror}); choose a writable {option}') from err
    try:
        stale = _read_holder(fd)
        if stale:
            # A flock dies with its process; the pid named may be alive again, as another process.
            print_log(f'{path}: taking over a lock that no process holds (it names {stale}: a run that ended '
                      'without removing it)', logger='current', level=logging.WARNING)
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
