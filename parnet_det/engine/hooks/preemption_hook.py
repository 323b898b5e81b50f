"""SIGTERM, how clusters pre-empt jobs, ends a training run as Ctrl-C does, saying where it stopped."""
import os.path as osp
import signal
from typing import Optional

from mmengine.hooks import Hook

from mmdet.registry import HOOKS

from ...utils.fileio import ATOMIC_LOCAL_BACKEND, atomic_write


class TrainingPreempted(RuntimeError):
    """A training run was stopped by SIGTERM; the message names where, and what to resume from."""


@HOOKS.register_module()
class PreemptionHook(Hook):
    """Stop training at the end of the iteration in which SIGTERM arrives, naming the epoch and iteration
    reached and the checkpoint to resume from (:class:`TrainingPreempted`).

    Python's default for SIGTERM ends the process at once: no ``finally``
    runs (the work dir's lock stays behind) and nothing says where training
    was; mmengine installs no handler. Here the handler only sets a flag, and
    the run stops between iterations, through the exception path Ctrl-C takes
    (the lock released). With ``save_checkpoint=True`` (set in the config:
    ``custom_hooks=[dict(type='PreemptionHook', save_checkpoint=True)]``) the
    iteration reached is saved first as ``preempted_epoch_E_iter_I.pth`` and
    ``last_checkpoint`` names it, so ``--resume`` continues from it, at the
    next iteration (:class:`~parnet_det.engine.ResumableEpochBasedTrainLoop`,
    which ``tools/train.py`` uses) and with the random states it stopped at
    (:class:`~parnet_det.engine.RandomStateHook`). Without it, the message names the last periodic
    checkpoint (what a pre-empted run loses is the iterations since then).
    """

    priority = 'VERY_LOW'  # after the other hooks' after_train_iter: logged, and checkpointed if due

    def __init__(self, save_checkpoint: bool = False) -> None:
        self.save_checkpoint = save_checkpoint
        self._terminated = False
        self._previous_handler = None

    def before_run(self, runner) -> None:
        self._previous_handler = signal.signal(signal.SIGTERM, self._on_sigterm)

    def after_run(self, runner) -> None:
        self._restore_handler()

    def _on_sigterm(self, signum, frame) -> None:
        self._terminated = True

    def _restore_handler(self) -> None:
        if self._previous_handler is not None:
            signal.signal(signal.SIGTERM, self._previous_handler)
            self._previous_handler = None

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        if self._terminated:
            self._stop(runner)

    def after_val_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        if self._terminated:
            self._stop(runner)

    def _stop(self, runner) -> None:
        self._restore_handler()
        # In after_train_iter mmengine has not yet counted the iteration just finished.
        epoch, iteration = runner.epoch + 1, runner.iter + 1
        saved = self._save(runner) if self.save_checkpoint else None
        resume_from = saved or runner.message_hub.get_info('last_ckpt')
        how = (f'resume from {resume_from} (tools/train.py ... --resume)' if resume_from else
               'no checkpoint was saved yet: a rerun starts from scratch')
        raise TrainingPreempted(f'training stopped by SIGTERM in epoch {epoch} at iteration {iteration} of '
                                f'{runner.max_iters}; {how}')

    def _save(self, runner) -> Optional[str]:
        """Save the iteration reached (crash-safe, as every checkpoint) and point ``last_checkpoint`` at it."""
        filename = f'preempted_epoch_{runner.epoch + 1}_iter_{runner.iter + 1}.pth'
        runner.save_checkpoint(runner.work_dir, filename, by_epoch=False,
                               backend_args=dict(backend=ATOMIC_LOCAL_BACKEND))
        path = osp.join(runner.work_dir, filename)
        with atomic_write(osp.join(runner.work_dir, 'last_checkpoint'), 'w') as f:
            f.write(path)
        return path
