"""Scaled-YOLOv4's nominal batch: gradients summed over micro-batches until a batch of 64 has been seen."""
from typing import Optional

from mmengine.optim import AmpOptimWrapper, OptimWrapper

from mmdet.registry import OPTIM_WRAPPERS


class NominalBatchMixin:
    """Step the optimizer once per nominal batch ``nbs``, whatever the total batch ``B`` (GPUs x per-GPU batch).

    As Scaled-YOLOv4's train.py::

        accumulate = max(round(nbs / B), 1)        (ramped in the warm-up: max(1, round(1 + (nbs / B - 1) t)))
        weight_decay *= B * accumulate / nbs       (the decayed group; once, before a checkpoint is loaded)
        gradients SUMMED over the accumulated micro-batches, no division

    The loss is already a sum over the images of a micro-batch (``YOLOv4CSPLoss`` x ``B``), so the
    summed gradient of ``accumulate`` micro-batches is the one of a batch of ``nbs``. mmengine's
    ``accumulative_counts`` divides each loss by the count (an average): the recipe's lr0 would then
    act on a quarter of its gradient at ``B = 16``. The step comes after the ``accumulate``-th
    micro-batch of the global iteration count (``(i + 1) % accumulate == 0``, mmengine's phase).
    train.py steps where ``i % accumulate == 0``: one step on the very first micro-batch, then windows
    one micro-batch earlier than those of a batch-64 run. With mmengine's phase every window holds the
    images of the batch-64 run's step, so all layouts make the same updates after the warm-up.
    ``accumulate`` is set per iteration by ``YOLOv4CSPLrHook`` (which owns the warm-up); a run without it
    stops at its first update with an error that says so.

    Args:
        nominal_batch_size (int): ``nbs``. Defaults to 64.
    """

    def __init__(self, *args, nominal_batch_size: int = 64, **kwargs) -> None:
        if kwargs.get('accumulative_counts', 1) != 1:
            raise ValueError(f'{type(self).__name__} accumulates to nominal_batch_size itself: remove '
                             'optim_wrapper.accumulative_counts')
        if nominal_batch_size < 1:
            raise ValueError(f'{type(self).__name__}: nominal_batch_size must be >= 1, got {nominal_batch_size}')
        super().__init__(*args, **kwargs)
        self.nominal_batch_size = nominal_batch_size
        self.total_batch_size: Optional[int] = None
        self.accumulate: Optional[int] = None

    def set_total_batch_size(self, total_batch_size: int) -> None:
        """Take ``B``; set ``accumulate`` to its value after the warm-up and scale the weight decay."""
        self.total_batch_size = total_batch_size
        self.accumulate = max(round(self.nominal_batch_size / total_batch_size), 1)
        for group in self.optimizer.param_groups:
            group['weight_decay'] *= total_batch_size * self.accumulate / self.nominal_batch_size

    def ramp_accumulate(self, progress: float) -> None:
        """``accumulate`` at warm-up ``progress`` t in [0, 1]: train.py's ``np.interp(ni, [0, nw], [1, nbs / B])``
        rounded half to even (Python's ``round`` as numpy's)."""
        self._check_configured()
        target = self.nominal_batch_size / self.total_batch_size
        self.accumulate = max(1, round(1 + (target - 1) * progress))

    def _check_configured(self) -> None:
        if self.total_batch_size is None:
            raise RuntimeError(f'{type(self).__name__} needs YOLOv4CSPLrHook in custom_hooks: the hook gives it the '
                               'total batch and the warm-up ramp of the accumulation count')

    def scale_loss(self, loss):
        return loss  # summed, not averaged (see the class docstring)

    def should_update(self) -> bool:
        """Called after the backward of iteration ``i`` (the count is ``i + 1``): whether it ends a window."""
        self._check_configured()
        return self._inner_count % self.accumulate == 0

    def should_sync(self) -> bool:
        """Called before the forward of iteration ``i``: DDP reduces the gradients only in a window's last one."""
        self._check_configured()
        return (self._inner_count + 1) % self.accumulate == 0


@OPTIM_WRAPPERS.register_module()
class NominalBatchOptimWrapper(NominalBatchMixin, OptimWrapper):
    """mmengine's ``OptimWrapper`` with :class:`NominalBatchMixin`'s accumulation (fp32)."""


@OPTIM_WRAPPERS.register_module()
class NominalBatchAmpOptimWrapper(NominalBatchMixin, AmpOptimWrapper):
    """mmengine's ``AmpOptimWrapper`` with :class:`NominalBatchMixin`'s accumulation (the recipe's AMP)."""
