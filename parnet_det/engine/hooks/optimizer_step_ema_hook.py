"""mmengine's EMAHook, averaging once per optimizer step instead of once per iteration."""
from mmengine.hooks import EMAHook

from mmdet.registry import HOOKS


@HOOKS.register_module()
class OptimizerStepEMAHook(EMAHook):
    """``ema = d ema + (1 - d) model`` after each optimizer step, as Scaled-YOLOv4's ``ema.update``.

    mmengine's ``EMAHook`` updates after every iteration, also those that only accumulate
    gradients (the weights have not moved, and the decay's step count runs ahead: with
    ``ExpMomentumEMA`` the warm-up of the decay, ``1 - exp(-updates / 2000)``, counts optimizer
    steps in the recipe). Here the update follows the optimizer wrapper's ``should_update()``,
    which after an iteration's backward says whether that iteration stepped (mmengine's
    ``accumulative_counts`` and :class:`~parnet_det.engine.NominalBatchOptimWrapper` alike).
    """

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        if runner.optim_wrapper.should_update():
            super().after_train_iter(runner, batch_idx, data_batch, outputs)
