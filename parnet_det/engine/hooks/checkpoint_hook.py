"""Checkpoints that survive a crash during their save."""
import os.path as osp
import tempfile

from mmengine.hooks import CheckpointHook

from mmdet.registry import HOOKS

from ...utils.fileio import PARTIAL_SUFFIX, atomic_write


class _WorkDirRedirect:
    """A runner seen with another ``work_dir``; everything else is the runner's."""

    def __init__(self, runner, work_dir: str) -> None:
        self._runner = runner
        self.work_dir = work_dir

    def __getattr__(self, name: str):
        return getattr(self._runner, name)


@HOOKS.register_module()
class CrashSafeCheckpointHook(CheckpointHook):
    """mmengine's ``CheckpointHook``, but every file appears complete or not at all.

    mmengine writes ``epoch_N.pth`` and then ``last_checkpoint`` in place: a
    process killed during a save leaves a truncated checkpoint under its final
    name, or an empty ``last_checkpoint``. Here checkpoints go through the
    ``atomic_local`` file backend (:class:`~parnet_det.utils.fileio.AtomicLocalBackend`:
    temporary file, fsync, rename) unless the arguments choose another backend
    or a remote ``out_dir``; ``last_checkpoint`` (always local) is written the
    same way. The keyword arguments are ``CheckpointHook``'s. ``tools/train.py``
    uses this hook in place of ``CheckpointHook``.
    """

    def __init__(self, **kwargs) -> None:
        local = kwargs.get('file_client_args') is None and '://' not in str(kwargs.get('out_dir') or '')
        if kwargs.get('backend_args') is None and local:
            kwargs['backend_args'] = dict(backend='atomic_local')
        super().__init__(**kwargs)

    def _save_checkpoint_with_step(self, runner, step, meta) -> None:
        # mmengine writes last_checkpoint to runner.work_dir with a plain open(): let it write
        # into a scratch directory, then put the pointer in place atomically.
        with tempfile.TemporaryDirectory(dir=runner.work_dir, prefix='.last_checkpoint.',
                                         suffix=PARTIAL_SUFFIX) as scratch:
            super()._save_checkpoint_with_step(_WorkDirRedirect(runner, scratch), step, meta)
            if osp.isfile(osp.join(scratch, 'last_checkpoint')):  # only the main process writes it
                with atomic_write(osp.join(runner.work_dir, 'last_checkpoint'), 'w') as f:
                    f.write(self.last_ckpt)
