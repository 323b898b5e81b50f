"""What keeps runs and models from being mixed up: one training per work dir, resume and test only the
same model, a diverging run stopped with a message."""
import contextlib
import os
from typing import Iterator

from mmengine.config import Config

from ..models.builder import build_detector
from ..utils.checkpoint import CheckpointMismatchError, check_weights_fit, load_checkpoint_file
from ..utils.config import class_names_difference, config_class_names
from ..utils.fileio import check_writable_file
from ..utils.work_dir_lock import work_dir_lock

# Where each launcher puts the process's global rank before torch.distributed is started.
_RANK_VARIABLES = dict(pytorch='RANK', slurm='SLURM_PROCID', mpi='OMPI_COMM_WORLD_RANK')


def launcher_rank(launcher: str) -> int:
    """This process's rank in a run started by ``launcher`` (0 for 'none')."""
    variable = _RANK_VARIABLES.get(launcher)
    return int(os.environ.get(variable, 0)) if variable else 0


@contextlib.contextmanager
def exclusive_work_dir(work_dir: str, launcher: str = 'none') -> Iterator[None]:
    """Hold ``work_dir``'s lock (:func:`~parnet_det.utils.work_dir_lock.work_dir_lock`) for the body.

    Of a distributed run (``launcher``) only rank 0 takes it: the ranks of one
    run share the work dir; a second run's rank 0 stops, and its launcher
    (torchrun) ends the other ranks.
    """
    if launcher_rank(launcher) != 0:
        yield
        return
    with work_dir_lock(work_dir):
        yield


def add_training_checks(cfg: Config) -> Config:
    """Add :class:`~parnet_det.engine.DivergenceCheckHook`, :class:`~parnet_det.engine.PreemptionHook`
    (SIGTERM stops the run with a message) and, when resuming from a file,
    :class:`~parnet_det.engine.ResumeCheckHook` to ``cfg.custom_hooks``."""
    hooks = list(cfg.get('custom_hooks') or [])
    for check in ('DivergenceCheckHook', 'PreemptionHook'):  # a config's own (e.g. saving on SIGTERM) is kept
        if not any(hook.get('type') == check for hook in hooks):
            hooks.append(dict(type=check))
    if cfg.get('resume') and cfg.get('load_from'):
        hooks.append(dict(type='ResumeCheckHook', checkpoint=cfg.load_from))
    cfg.custom_hooks = hooks
    return cfg


def check_resume_fits(cfg: Config) -> None:
    """Refuse a ``--resume`` checkpoint whose weights are not exactly the config's model's, before the runner is
    built: building it writes a log folder and a config dump into the work dir, another run's where the
    checkpoint is of another model. :class:`~parnet_det.engine.ResumeCheckHook` checks the optimizer's groups
    once the runner has built them."""
    if cfg.get('resume') and cfg.get('load_from'):
        check_weights_fit(build_detector(cfg), load_checkpoint_file(cfg.load_from, map_location='cpu'),
                          f'--resume: {cfg.load_from}')


def use_checked_test_model(cfg: Config, checkpoint: str) -> Config:
    """Prove that ``checkpoint`` fits ``cfg``'s model and classes, and build the runner's model from the
    config it was proven on.

    The checkpoint is loaded strictly (:func:`~parnet_det.apis.build_detector`;
    a deploy checkpoint into the folded form). ``cfg.model`` then becomes that
    model's config (``deploy=True`` where the checkpoint is a deploy one): the
    runner's own loading, non-strict in mmengine, finds exactly the keys just
    checked, so nothing is evaluated at its initialisation. A checkpoint whose
    ``dataset_meta`` names other classes, or the same in another order, than the
    test dataset stops: per-class AP would be reported under the wrong names.
    Also checks that ``cfg.work_dir`` can be written. Raises
    :class:`~parnet_det.utils.checkpoint.CheckpointError` or ``OSError``.
    """
    check_writable_file(os.path.join(cfg.work_dir, 'ap_results.jsonl'), parent_may_be_missing=True)
    model = build_detector(cfg, checkpoint)
    difference = class_names_difference((model.dataset_meta or {}).get('classes'), config_class_names(cfg))
    if difference:
        raise CheckpointMismatchError(f'{checkpoint}: {difference}; evaluate it with the config it was trained '
                                      "with, or set the test dataset's metainfo=dict(classes=...) to its classes")
    cfg.model = model.cfg.model
    return cfg

