"""Checkpoints that survive a crash during their save."""
from mmengine.hooks import CheckpointHook

from mmdet.registry import HOOKS

from ...utils.fileio import ATOMIC_LOCAL_BACKEND  # importing it registers the backend


@HOOKS.register_module()
class CrashSafeCheckpointHook(CheckpointHook):
    """mmengine's ``CheckpointHook`` writing its checkpoints through the ``atomic_local`` file backend.

    mmengine writes ``epoch_N.pth`` in place: a process killed during a save
    leaves a truncated checkpoint under its final name. The ``atomic_local``
    backend (:class:`~parnet_det.utils.fileio.AtomicLocalBackend`: temporary
    file, fsync, rename) makes each checkpoint appear complete or not at all,
    through mmengine's public ``backend_args`` and nothing else. Arguments that
    choose another backend or a remote ``out_dir`` are kept as given. The
    ``last_checkpoint`` pointer that mmengine writes after each save is a plain
    file: a kill in that instant can leave it empty or cut, never naming another
    complete checkpoint, and ``--resume`` then falls back to the newest loadable
    ``epoch_N.pth`` / ``iter_N.pth`` (:func:`~parnet_det.utils.checkpoint.find_resume_checkpoint`).
    The keyword arguments are ``CheckpointHook``'s. ``tools/train.py`` uses this
    hook in place of ``CheckpointHook``.
    """

    def __init__(self, **kwargs) -> None:
        local = kwargs.get('file_client_args') is None and '://' not in str(kwargs.get('out_dir') or '')
        if kwargs.get('backend_args') is None and local:
            kwargs['backend_args'] = dict(backend=ATOMIC_LOCAL_BACKEND)
        super().__init__(**kwargs)
