"""Crash-safe file writes (a file appears under its name complete, or not at all), and the checks, before any
work, that an output can be written and replaces no input."""
import contextlib
import errno
import hashlib
import json
import os
import os.path as osp
import secrets
import shutil
from typing import IO, Callable, Iterator, List, Optional, Sequence, Tuple

from mmengine.fileio import LocalBackend, register_backend

# Ends the name of every temporary file or directory that a write in progress uses.
PARTIAL_SUFFIX = '.tmp'
# The name mmengine's ``backend_args`` use for :class:`AtomicLocalBackend`.
ATOMIC_LOCAL_BACKEND = 'atomic_local'


def file_sha256(path: str) -> str:
    """The SHA-256 of a file's bytes, hex, read in 1 MB blocks (checkpoints are hundreds of MB)."""
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(2**20), b''):
            digest.update(block)
    return digest.hexdigest()


def strict_json(obj, **dumps_kwargs) -> str:
    """``obj`` as JSON text that every parser reads: a NaN or an infinity raises ValueError.

    Python's ``json`` writes them by default as bare ``NaN`` / ``Infinity``,
    which is not JSON (strict parsers reject the file); callers drop such
    values first where they can happen, and say how many they dropped.
    """
    try:
        return json.dumps(obj, allow_nan=False, **dumps_kwargs)
    except ValueError as err:
        raise ValueError(f'not written: {err} (JSON has no NaN or infinity)') from err


def create_temporary(path: str, suffix: str = PARTIAL_SUFFIX) -> Tuple[int, str]:
    """Create a new empty file beside ``path`` for its content in progress; returns ``(fd, name)``.

    The name is hidden and unpredictable (``.name.<64 random bits><suffix>``), and the file is created
    exclusively, never through a link (``O_EXCL | O_NOFOLLOW``): a symlink or file planted under a
    guessed name makes this fail rather than write where it points. Permissions are a plain open()'s
    (not tempfile.mkstemp's private 0600).
    """
    tmp_path = osp.join(osp.dirname(osp.abspath(path)), f'.{osp.basename(path)}.{secrets.token_hex(8)}{suffix}')
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    return os.open(tmp_path, flags, 0o666), tmp_path


def publish(tmp_path: str, path: str, overwrite: bool = True) -> None:
    """Give the complete file ``tmp_path`` its name ``path`` atomically, then fsync the directory (the new
    name survives a power loss). Without ``overwrite``, FileExistsError if ``path`` exists (checked by the
    file system, not before: a hard link never replaces a file), and ``tmp_path`` is kept."""
    if overwrite:
        os.replace(tmp_path, path)
    else:
        os.link(tmp_path, path)
        os.remove(tmp_path)
    dir_fd = os.open(osp.dirname(osp.abspath(path)), os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


class DiskFullError(OSError):
    """A write ran out of space (or quota); the message names the folder and what is intact."""


def _disk_full(path: str, err: OSError) -> DiskFullError:
    folder = osp.dirname(osp.abspath(path))
    kept = 'its earlier content is intact' if osp.exists(path) else 'no partial file is left under its name'
    error = DiskFullError(f'no space left in {folder} while writing {osp.basename(path)} ({err.strerror}): nothing '
                          f'was replaced, {kept}, and every file written before is complete; free space there (or '
                          'write elsewhere) and run again')
    error.errno = err.errno  # as the OSError it stands for; not in the message
    return error


@contextlib.contextmanager
def atomic_write(path: str, mode: str = 'wb', overwrite: bool = True, **open_kwargs) -> Iterator[IO]:
    """Open a temporary file beside ``path``; on success flush, fsync and rename it to ``path``.

    The temporary file is in the same directory (a rename is atomic only
    within one file system), created exclusively under a hidden, unpredictable
    name (:func:`create_temporary`); it is removed if the
    body raises. After the rename the directory is fsynced too, so the new
    name survives a power loss. Without ``overwrite``, an existing ``path`` is
    kept and FileExistsError raised (see :func:`publish`). Running out of space
    raises :class:`DiskFullError` naming the folder and what is intact.
    """
    fd, tmp_path = create_temporary(path)
    try:
        with os.fdopen(fd, mode, **open_kwargs) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        publish(tmp_path, path, overwrite)
    except BaseException as err:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp_path)
        if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT):
            raise _disk_full(path, err) from err
        raise


def remove_partial_files(directory: str) -> List[str]:
    """Remove what writes killed midway left in ``directory`` (hidden ``.*.tmp``); returns their names.

    Only for a directory no other process is saving into at the time (e.g. before training resumes).
    """
    leftovers = sorted(name for name in os.listdir(directory)
                       if name.startswith('.') and name.endswith(PARTIAL_SUFFIX))
    for name in leftovers:
        path = osp.join(directory, name)
        # Processes of one distributed run clean the same directory at once.
        with contextlib.suppress(FileNotFoundError):
            if osp.isdir(path):
                shutil.rmtree(path)
            else:
                os.remove(path)
    return leftovers


class OutputIsInputError(ValueError):
    """An output path would replace one of the command's inputs, or be written into an input folder."""


def check_apart_from_inputs(output: str, inputs: Sequence[str]) -> None:
    """Raise :class:`OutputIsInputError` if writing ``output`` would replace an input file or land in an
    input folder (an archive inside the folder it packs, drawings among a dataset's images).

    Compared by real path and, where both exist, by the file system (``samefile``: a hard link is the
    same file under another name); an input that does not exist cannot be replaced.
    """
    real_output = osp.realpath(output)
    for path in inputs:
        real_input = osp.realpath(path)
        if real_output == real_input or (osp.exists(output) and osp.exists(path) and osp.samefile(output, path)):
            raise OutputIsInputError(f'{output} is the input {path}: writing it would replace the input; give '
                                     'another output path')
        # A folder, or one still to be made (a work dir packed at the end); a path under a file is the
        # writability check's ("is a file, not a directory").
        if not osp.isfile(real_input) and osp.commonpath([real_output, real_input]) == real_input:
            raise OutputIsInputError(f'{output} is inside the input folder {path}: writing it there would change '
                                     'the input; give an output path outside it')


def _nearest_existing(path: str) -> str:
    """``path`` or its closest ancestor that exists (where a missing folder would be created)."""
    while not osp.exists(path):
        path = osp.dirname(path)
    return path


def file_starts_with(*magics: bytes) -> Callable[[str], bool]:
    """A recogniser of a tool's own earlier output by its first bytes (e.g. gzip's ``\\x1f\\x8b``), for
    :func:`check_writable_file`'s ``own_output``."""

    def starts(path: str) -> bool:
        with open(path, 'rb') as f:
            head = f.read(max(map(len, magics)))
        return head.startswith(magics)

    return starts


def check_writable_file(path: str, parent_may_be_missing: bool = False, inputs: Sequence[str] = (),
                        own_output: Optional[Callable[[str], bool]] = None) -> None:
    """Raise a clear error now if ``path`` cannot be written, before any work is spent on its content.

    With ``parent_may_be_missing``, missing parent directories are fine if
    they can be created (the caller creates them when it writes). ``inputs``
    are the command's input files and folders: ``path`` must replace none of
    them, nor lie in one (:func:`check_apart_from_inputs`). With ``own_output``,
    an existing file at ``path`` is replaced only if ``own_output(path)``
    recognises it as this tool's own earlier output: anything else there (a
    checkpoint under a results name, a symlink) is refused, never replaced.
    Every tool passes one but ONNX export (parnet_det/deploy, not yet).
    """
    check_apart_from_inputs(path, inputs)
    if osp.isdir(path):
        raise IsADirectoryError(f'cannot write {path}: it is a directory')
    if own_output is not None and osp.lexists(path):
        what = ('a symlink' if osp.islink(path) else None if osp.isfile(path) and own_output(path) else
                'a file that is not an earlier output of this tool')
        if what:
            raise FileExistsError(f'{path} exists and is {what}; it is never replaced: give a new path, or remove '
                                  'it first if it is yours to lose')
    directory = osp.dirname(osp.abspath(path))
    existing = _nearest_existing(directory)
    if not osp.isdir(existing):
        raise NotADirectoryError(f'cannot write {path}: {existing} is a file, not a directory')
    if existing != directory and not parent_may_be_missing:
        raise FileNotFoundError(f'cannot write {path}: directory {directory} does not exist')
    if not os.access(existing, os.W_OK | os.X_OK):
        raise PermissionError(f'cannot write {path}: no write permission in {existing}')


def check_new_or_empty_dir(path: str, option: str, inputs: Sequence[str] = (), ignore: Sequence[str] = ()) -> None:
    """Refuse an output folder ``path`` (given as ``option``) that is a file, is not empty (but for the names
    in ``ignore``: a run's lock file), is or lies in an input folder, or cannot be written (checked now, not
    after a model has loaded): a tool writing into it never writes over a file."""
    check_apart_from_inputs(path, inputs)
    if osp.exists(path) and not osp.isdir(path):
        raise NotADirectoryError(f'{option} {path} is a file; give a folder (new or empty)')
    entries = sorted(set(os.listdir(path)) - set(ignore)) if osp.isdir(path) else []
    if entries:
        raise FileExistsError(f'{option} {path} is not empty ({len(entries)} entries: {", ".join(entries[:3])}'
                              f'{", ..." if len(entries) > 3 else ""}); the tool never writes over files: give a new '
                              'or empty folder')
    existing = _nearest_existing(osp.abspath(path))
    if not osp.isdir(existing):
        raise NotADirectoryError(f'{option} {path}: {existing} is a file, not a folder')
    if not os.access(existing, os.W_OK | os.X_OK):
        raise PermissionError(f'{option} {path}: no write permission in {existing}; give a writable folder')


@register_backend(ATOMIC_LOCAL_BACKEND)
class AtomicLocalBackend(LocalBackend):
    """mmengine's local file backend, but ``put`` and ``put_text`` write through :func:`atomic_write`.

    mmengine writes checkpoints in place: a process killed during a save
    leaves a truncated file under the final name.
    """

    def put(self, obj: bytes, filepath) -> None:
        os.makedirs(osp.dirname(osp.abspath(filepath)), exist_ok=True)
        with atomic_write(str(filepath), 'wb') as f:
            f.write(obj)

    def put_text(self, obj: str, filepath, encoding: str = 'utf-8') -> None:
        os.makedirs(osp.dirname(osp.abspath(filepath)), exist_ok=True)
        with atomic_write(str(filepath), 'w', encoding=encoding) as f:
            f.write(obj)
