"""Scaled-YOLOv4's per-iteration schedule: per-group lr and momentum warm-up, then cosine to lrf per epoch, and
the warm-up ramp of the gradient accumulation to the nominal batch."""
import math
from typing import List, Optional

from mmengine.dist import get_world_size
from mmengine.hooks import Hook
from mmengine.optim import BaseOptimWrapper
from mmengine.runner import EpochBasedTrainLoop

from mmdet.registry import HOOKS

from ..optimizers import GROUP_NAMES, NominalBatchMixin


@HOOKS.register_module()
class YOLOv4CSPLrHook(Hook):
    """Set every group's lr and momentum, and the accumulation count, before each iteration, as train.py does.

    With ``lr0`` and ``m0`` the optimizer's lr and momentum, ``E`` the epochs,
    ``nb`` the iterations per epoch, at epoch ``e`` and global iteration ``i``::

        lf(e) = (1 + cos(pi e / E)) / 2 * (1 - lrf) + lrf          (LambdaLR, stepped per epoch)
        nw    = max(round(warmup_epochs * nb), warmup_min_iters)
        i >= nw:  lr = lr0 * lf(e),  momentum = m0
        i <  nw:  t = i / nw
                  lr       = start + (lr0 * lf(e) - start) * t     start = warmup_bias_lr for the bias group, 0 else
                  momentum = warmup_momentum + (m0 - warmup_momentum) * t
                  accumulate = max(1, round(1 + (nbs / B - 1) * t))       (a NominalBatchOptimWrapper's)

    ``i`` and ``nb`` count the iterations of the dataloader (micro-batches of ``B`` images over
    the processes), as the recipe counts them, whatever the accumulation. With a
    :class:`~parnet_det.engine.NominalBatchOptimWrapper` the hook also gives it the total batch
    ``B`` (per-GPU batch x world size) before the run, which scales the weight decay.
    The groups are :class:`~parnet_det.engine.YOLOv4CSPOptimWrapperConstructor`'s,
    found by ``group_name``. mmengine's schedulers cannot do this: they multiply each
    group's own base lr by one shared factor, so no chain starts the bias group at
    0.1 and the others at 0 and brings both to the same lr0 * lf(e). The rates are a
    function of ``runner.iter`` and ``runner.epoch`` only, so a resumed run continues
    the curve; ``lr0`` and ``m0`` are read in ``before_run``, before a checkpoint's
    optimizer state (with its current rates) is loaded. The priority is above
    ``RuntimeInfoHook``'s (VERY_HIGH), so the logged lr is the one the step uses
    (the first group's: ``no_decay``). Needs an epoch-based loop and no
    ``param_scheduler`` (they would fight over the rates).

    Args:
        lrf (float): Final lr as a fraction of lr0. Defaults to 0.2.
        warmup_epochs (float): Warm-up length in epochs. Defaults to 3.
        warmup_min_iters (int): Shortest warm-up in iterations. Defaults to 1000.
        warmup_bias_lr (float): The bias group's lr at iteration 0. Defaults to 0.1.
        warmup_momentum (float): Momentum at iteration 0. Defaults to 0.8.
    """

    priority = 'HIGHEST'

    def __init__(self, lrf: float = 0.2, warmup_epochs: float = 3.0, warmup_min_iters: int = 1000,
                 warmup_bias_lr: float = 0.1, warmup_momentum: float = 0.8) -> None:
        for name, value, valid, rule in (('lrf', lrf, 0 <= lrf <= 1, 'in [0, 1]'),
                                         ('warmup_epochs', warmup_epochs, warmup_epochs >= 0, '>= 0'),
                                         ('warmup_min_iters', warmup_min_iters, warmup_min_iters >= 0, '>= 0'),
                                         ('warmup_bias_lr', warmup_bias_lr, warmup_bias_lr >= 0, '>= 0'),
                                         ('warmup_momentum', warmup_momentum, 0 <= warmup_momentum < 1, 'in [0, 1)')):
            if not valid:
                raise ValueError(f'YOLOv4CSPLrHook: {name} must be {rule}, got {value}')
        self.lrf = lrf
        self.warmup_epochs = warmup_epochs
        self.warmup_min_iters = int(warmup_min_iters)
        self.warmup_bias_lr = warmup_bias_lr
        self.warmup_momentum = warmup_momentum
        self.base_lrs: Optional[List[float]] = None
        self.base_momenta: Optional[List[float]] = None
        self.is_bias: Optional[List[bool]] = None

    def lr_factor(self, epoch: int, max_epochs: int) -> float:
        """lf(e): cosine from 1 at epoch 0 to lrf at epoch ``max_epochs``."""
        return (1 + math.cos(math.pi * epoch / max_epochs)) / 2 * (1 - self.lrf) + self.lrf

    def warmup_iters(self, iters_per_epoch: int) -> int:
        """nw = max(round(warmup_epochs * nb), warmup_min_iters)."""
        return max(round(self.warmup_epochs * iters_per_epoch), self.warmup_min_iters)

    def before_run(self, runner) -> None:
        if not isinstance(runner.optim_wrapper, BaseOptimWrapper):
            return  # Runner.test and Runner.val call before_run too, and build no optimizer
        if not isinstance(runner.train_loop, EpochBasedTrainLoop):
            raise TypeError('YOLOv4CSPLrHook steps the lr per epoch: use train_cfg=dict(type=\'EpochBasedTrainLoop\', '
                            f'...), not {type(runner.train_loop).__name__}')
        if runner.param_schedulers:
            raise ValueError('YOLOv4CSPLrHook sets the lr and momentum itself: remove param_scheduler from the config')
        groups = runner.optim_wrapper.optimizer.param_groups
        names = [group.get('group_name') for group in groups]
        if 'bias' not in names or any(name not in GROUP_NAMES for name in names):
            raise ValueError('YOLOv4CSPLrHook needs the parameter groups of YOLOv4CSPOptimWrapperConstructor '
                             f'(group_name in {GROUP_NAMES}), got {names}: set '
                             'optim_wrapper.constructor=\'YOLOv4CSPOptimWrapperConstructor\'')
        if any('momentum' not in group for group in groups):
            raise ValueError('YOLOv4CSPLrHook schedules the momentum: use an optimizer with momentum (SGD), not '
                             f'{type(runner.optim_wrapper.optimizer).__name__}')
        # optim_wrapper.param_groups: the optimizer's groups, then (several groups) mmengine's base_param_settings,
        # which it logs as base_lr; scheduled here like a group without the bias warm-up.
        self.base_lrs = [group['lr'] for group in runner.optim_wrapper.param_groups]
        self.base_momenta = [group['momentum'] for group in runner.optim_wrapper.param_groups]
        self.is_bias = [group.get('group_name') == 'bias' for group in runner.optim_wrapper.param_groups]
        if isinstance(runner.optim_wrapper, NominalBatchMixin):
            runner.optim_wrapper.set_total_batch_size(runner.train_dataloader.batch_size * get_world_size())

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        target = self.lr_factor(runner.epoch, runner.max_epochs)
        warmup = self.warmup_iters(len(runner.train_dataloader))
        progress = runner.iter / warmup if runner.iter < warmup else 1.0
        for group, lr0, m0, is_bias in zip(runner.optim_wrapper.param_groups, self.base_lrs, self.base_momenta,
                                           self.is_bias):
            start = self.warmup_bias_lr if is_bias else 0.0
            group['lr'] = start + (lr0 * target - start) * progress
            group['momentum'] = self.warmup_momentum + (m0 - self.warmup_momentum) * progress
        if isinstance(runner.optim_wrapper, NominalBatchMixin):
            runner.optim_wrapper.ramp_accumulate(progress)
