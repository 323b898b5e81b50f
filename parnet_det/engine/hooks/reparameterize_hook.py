"""Fold ParNet's branches before evaluation (tools/test.py --deploy)."""
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper

from mmdet.registry import HOOKS

from ...models.reparameterize import switch_to_deploy


@HOOKS.register_module()
class ReparameterizeHook(Hook):
    """Re-parameterise the model once its checkpoint is loaded, before testing.

    ``Runner.test`` loads the checkpoint and then calls ``before_test``, so the
    folded model holds the checkpoint's weights. Do not combine with
    ``EMAHook``: it swaps parameters of the training form in and out; an
    mmengine checkpoint's ``state_dict`` already holds the EMA weights.
    """

    priority = 'VERY_LOW'

    def before_test(self, runner) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        model.eval()
        folded = switch_to_deploy(model)
        print_log(f'ReparameterizeHook: folded {folded} blocks for inference', logger='current')
