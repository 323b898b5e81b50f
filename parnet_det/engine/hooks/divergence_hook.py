"""Stop a diverging training with a message, before it crashes somewhere else or saves a broken model."""
import math
import os.path as osp

import torch
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from mmdet.registry import HOOKS


class TrainingDivergedError(RuntimeError):
    """The loss or the weights of a training run became non-finite."""


@HOOKS.register_module()
class DivergenceCheckHook(Hook):
    """After every iteration, stop if the loss or any weight is NaN or infinite.

    Own hook, not mmdet's ``CheckInvalidLossHook``: that one checks only the loss,
    every 50 iterations, and fails with a bare ``AssertionError``; a diverging
    YOLOX then crashes first in SimOTA's assigner on NaN predictions ("all
    elements of input should be between 0 and 1"), saying nothing of the loss.
    Checking the weights too catches the step that broke them (finite loss,
    exploded update) before the next forward. The check is one total norm per
    iteration,

        finite(loss)  and  finite(||(w_1, ..., w_n)||_2).

    Its priority is above the checkpoint hook's, so the broken model is never
    saved: the last checkpoint on disk is the last good one, and the error
    names it with the iteration and the learning rate.
    """

    priority = 'ABOVE_NORMAL'

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        loss = (outputs or {}).get('loss')
        loss_value = float(loss.detach()) if loss is not None else 0.0
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        weights_norm = float(torch.nn.utils.get_total_norm([p.detach() for p in model.parameters()]))
        if math.isfinite(loss_value) and math.isfinite(weights_norm):
            return
        what = (f'the loss is {loss_value}' if not math.isfinite(loss_value) else
                f'the loss was {loss_value:.4g}, then the update blew the weights up (their norm is {weights_norm})')
        # One value per distinct rate: with a paramwise_cfg every parameter is a group of its own.
        learning_rates = ', '.join(dict.fromkeys(f'{lr:.4g}' for rates in runner.optim_wrapper.get_lr().values()
                                                 for lr in rates))
        last = None
        pointer = osp.join(runner.work_dir, 'last_checkpoint')  # what --resume would continue from
        if osp.isfile(pointer):
            with open(pointer) as f:
                last = f.read().strip()
        kept = f'the last checkpoint, {last}, is kept as it was' if last else 'no checkpoint was saved'
        raise TrainingDivergedError(
            f'training diverged at iteration {runner.iter + 1} (epoch {runner.epoch + 1}, learning rate '
            f'{learning_rates}): {what}; {kept}. Lower the learning rate (optim_wrapper.optimizer.lr) or clip the '
            'gradients (optim_wrapper.clip_grad=dict(max_norm=10)), then train again')
