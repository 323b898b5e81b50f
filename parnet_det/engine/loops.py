"""An epoch loop that resumes a mid-epoch checkpoint at its iteration."""
from typing import Iterator, Sized

from mmengine.runner import EpochBasedTrainLoop
from torch.utils.data import DataLoader

from mmdet.registry import LOOPS

__all__ = ['ResumableEpochBasedTrainLoop', 'SkipBatches', 'remaining_batches']


class SkipBatches(Sized):
    """A batch sampler's batches, in its order, without the first ``skip`` (their indices are drawn, no data
    is loaded)."""

    def __init__(self, batch_sampler, skip: int) -> None:
        self.batch_sampler = batch_sampler
        self.skip = skip

    def __iter__(self) -> Iterator[list]:
        batches = iter(self.batch_sampler)
        for _ in range(self.skip):
            next(batches, None)
        return batches

    def __len__(self) -> int:
        return max(len(self.batch_sampler) - self.skip, 0)


def remaining_batches(loader: DataLoader, skip: int) -> DataLoader:
    """``loader`` for one epoch without its first ``skip`` batches: the same dataset, batch sampler (its epoch
    and seed, so the same order), workers and collation. torch's DataLoader takes no new sampler once built."""
    return DataLoader(loader.dataset, batch_sampler=SkipBatches(loader.batch_sampler, skip),
                      num_workers=loader.num_workers, collate_fn=loader.collate_fn, pin_memory=loader.pin_memory,
                      timeout=loader.timeout, worker_init_fn=loader.worker_init_fn,
                      multiprocessing_context=loader.multiprocessing_context, generator=loader.generator,
                      prefetch_factor=loader.prefetch_factor)


@LOOPS.register_module()
class ResumableEpochBasedTrainLoop(EpochBasedTrainLoop):
    """mmengine's ``EpochBasedTrainLoop`` that resumes a checkpoint saved mid-epoch at its iteration.

    mmengine's loop restarts the checkpoint's epoch from its first batch: a run
    pre-empted after ``i`` iterations of an epoch trains ``i`` iterations twice
    and overruns ``max_iters`` (its schedule and ETA with it). Here the epoch
    ``_iter`` falls in goes on from batch ``_iter - _epoch * len(dataloader)``
    (the batches before it skipped in the sampler's order: the same seed and
    epoch give the same batches), so a resumed run ends at the planned
    iteration count with the uninterrupted run's schedule. The keyword
    arguments are ``EpochBasedTrainLoop``'s; ``tools/train.py`` uses this loop
    in place of it.
    """

    def run_epoch(self) -> None:
        consumed = self._iter - self._epoch * len(self.dataloader)
        if consumed <= 0:
            return super().run_epoch()
        # mmengine's run_epoch, over the epoch's remaining batches, numbered on from where it stopped.
        self.runner.call_hook('before_train_epoch')
        self.runner.model.train()
        for idx, data_batch in enumerate(remaining_batches(self.dataloader, consumed), start=consumed):
            self.run_iter(idx, data_batch)
        self.runner.call_hook('after_train_epoch')
        self._epoch += 1
