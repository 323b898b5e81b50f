"""Resume only into the model that wrote the checkpoint."""
from mmengine.hooks import Hook

from mmdet.registry import HOOKS

from ...utils.checkpoint import CheckpointMismatchError, check_weights_fit, load_checkpoint_file


@HOOKS.register_module()
class ResumeCheckHook(Hook):
    """Before ``--resume`` loads ``checkpoint``, check that its weights and optimizer groups fit this run.

    mmengine resumes non-strictly: another model prints hundreds of key lines
    and then fails on the optimizer's parameter groups, or (another
    ``num_classes``) says "resumed" and crashes at the first step. Here the
    checkpoint's weights must be exactly the built model's (names and shapes)
    and its optimizer state must have as many parameter groups, of the same
    sizes, as the built optimizer; otherwise :class:`CheckpointMismatchError`.
    ``Runner.train`` calls ``before_run`` after building the optimizer and
    before loading the checkpoint. ``tools/train.py`` adds this hook when it resumes.

    Args:
        checkpoint (str): The file the run resumes from.
    """

    priority = 'VERY_HIGH'

    def __init__(self, checkpoint: str) -> None:
        self.checkpoint = checkpoint

    def before_run(self, runner) -> None:
        loaded = load_checkpoint_file(self.checkpoint, map_location='cpu')
        source = f'--resume: {self.checkpoint}'
        check_weights_fit(runner.model, loaded, source)
        saved_groups = (loaded.get('optimizer') or {}).get('param_groups')
        optimizer = getattr(runner.optim_wrapper, 'optimizer', None)  # one optimizer (not an OptimWrapperDict)
        if saved_groups is None or optimizer is None:
            return
        saved = [len(group['params']) for group in saved_groups]
        built = [len(group['params']) for group in optimizer.param_groups]
        if saved != built:
            raise CheckpointMismatchError(
                f'{source} holds optimizer state for parameter groups of sizes {saved}, this config builds {built} '
                '(another model or paramwise_cfg): resume with the config it was trained with, or start a new '
                'training from its weights with load_from=... and no --resume')
