"""A resumed run draws the random numbers the uninterrupted run drew."""
import random
from typing import Optional

import numpy as np
import torch
from mmengine.hooks import Hook

from mmdet.registry import HOOKS

# The checkpoint key of the states.
RANDOM_STATES = 'random_states'


def get_random_states(sampler=None) -> dict:
    """Python's, NumPy's and torch's (CPU, and CUDA where there is one) generator states and ``sampler``'s seed,
    as tensors, numbers and lists: what ``torch.load(weights_only=True)`` reads back."""
    name, keys, position, has_gauss, gauss = np.random.get_state()
    return dict(python=random.getstate(), numpy=[name, keys.tolist(), position, has_gauss, gauss],
                torch=torch.get_rng_state(),
                cuda=torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
                sampler_seed=getattr(sampler, 'seed', None))


def set_random_states(states: dict) -> None:
    """Restore the generators from :func:`get_random_states` (not the sampler's seed)."""
    version, state, gauss = states['python']
    random.setstate((version, tuple(state), gauss))
    name, keys, position, has_gauss, gauss = states['numpy']
    np.random.set_state((name, np.array(keys, dtype=np.uint32), position, has_gauss, gauss))
    torch.set_rng_state(states['torch'])
    if states['cuda'] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states['cuda'])


@HOOKS.register_module()
class RandomStateHook(Hook):
    """Save the random states (Python, NumPy, torch, CUDA, the train sampler's seed) in every checkpoint and,
    when a run resumes from one, restore them where the saving run stood.

    mmengine saves only the seed and, on resume, reseeds: the resumed run
    draws other numbers (augmentations, dropout) than the uninterrupted one,
    and its sampler, built before the checkpoint is read, keeps a seed of its
    own (another shuffle when no ``randomness.seed`` is set). Here the sampler
    gets the saved seed back before the resumed epoch; the generators are restored at the
    first iteration after a mid-epoch checkpoint (the epoch's data iterator,
    which draws a seed, exists then in both runs), or at the start of the epoch
    after an end-of-epoch one. With ``randomness=dict(deterministic=True)``
    and no dataloader workers, a run resumed from a checkpoint saved mid-epoch
    (:class:`~parnet_det.engine.PreemptionHook` with ``save_checkpoint``; with
    :class:`~parnet_det.engine.ResumableEpochBasedTrainLoop`) or at an epoch's
    end with no validation in between ends with the uninterrupted run's
    weights. Dataloader workers draw from generators of their own, not saved:
    with workers a resumed epoch gets the same batches, other augmentations. A
    ``load_from`` that is not a resume restores nothing.
    """

    priority = 'HIGHEST'  # restored before any other hook draws in the iteration

    def __init__(self) -> None:
        self._pending: Optional[dict] = None

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        checkpoint[RANDOM_STATES] = get_random_states(self._sampler(runner))

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        self._pending = checkpoint.get(RANDOM_STATES)

    def before_train_epoch(self, runner) -> None:
        if self._pending is None:
            return
        if runner.iter == 0:  # weights loaded for a new run (load_from), not a resume: nothing to restore
            self._pending = None
            return
        sampler = self._sampler(runner)
        if self._pending['sampler_seed'] is not None and hasattr(sampler, 'seed'):
            sampler.seed = self._pending['sampler_seed']  # before the epoch's iterator draws its order
        if runner.iter % len(runner.train_dataloader) == 0:
            self._restore()

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        if self._pending is not None:
            self._restore()

    def _restore(self) -> None:
        set_random_states(self._pending)
        self._pending = None

    @staticmethod
    def _sampler(runner):
        return getattr(runner.train_loop.dataloader, 'sampler', None)
