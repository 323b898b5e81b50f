"""What keeps runs and models from being mixed up: one training per work dir, resume and test only the
same model, a diverging run stopped with a message."""
import contextlib
import os
from typing import Iterator, List, Optional

from mmengine.config import Config

from ..models.builder import build_detector
from ..utils.checkpoint import CheckpointMismatchError, check_weights_fit, load_checkpoint_file
from ..utils.config import class_names_difference, config_class_names, config_files, data_paths
from ..utils.fileio import check_writable_file, file_starts_with
from ..utils.work_dir_lock import work_dir_lock

# Where each launcher puts the process's global rank before torch.distributed is started.
_RANK_VARIABLES = dict(pytorch='RANK', slurm='SLURM_PROCID', mpi='OMPI_COMM_WORLD_RANK')


def launcher_rank(launcher: str) -> int:
    """This process's rank in a run started by ``launcher`` (0 for 'none')."""
    variable = _RANK_VARIABLES.get(launcher)
    return int(os.environ.get(variable, 0)) if variable else 0


def run_inputs(cfg: Config, config_path: str, *checkpoints: Optional[str]) -> List[str]:
    """Everything a run reads, that none of its outputs may replace or lie in: the config and its ``_base_``
    chain, the checkpoints (``load_from`` among them), and every data root, image folder and annotation file."""
    return [*config_files(config_path), *filter(None, [*checkpoints, cfg.get('load_from')]), *data_paths(cfg)]


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
    (SIGTERM stops the run with a message), :class:`~parnet_det.engine.RandomStateHook` (a resumed run
    draws the uninterrupted one's random numbers) and, when resuming from a file,
    :class:`~parnet_det.engine.ResumeCheckHook` to ``cfg.custom_hooks``."""
    hooks = list(cfg.get('custom_hooks') or [])
    # A config's own (e.g. a PreemptionHook saving on SIGTERM) is kept.
    for check in ('DivergenceCheckHook', 'PreemptionHook', 'RandomStateHook'):
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


def pretrained_checkpoints(model_cfg) -> List[str]:
    """The local files the ``init_cfg=dict(type='Pretrained', checkpoint=...)`` anywhere in ``model_cfg`` name
    (URLs and ``torchvision://``-style names aside)."""
    found = []
    items = model_cfg.items() if isinstance(model_cfg, dict) else enumerate(model_cfg)
    for key, value in items:
        if key == 'init_cfg':
            for init in (value if isinstance(value, (list, tuple)) else [value]):
                if isinstance(init, dict) and init.get('type') == 'Pretrained' and '://' not in str(init.get(
                        'checkpoint', '://')):
                    found.append(init['checkpoint'])
        elif isinstance(value, (dict, list, tuple)):
            found += pretrained_checkpoints(value)
    return found


def check_loaded_checkpoints(cfg: Config) -> None:
    """Read every local checkpoint a new run loads (``load_from``, ``init_cfg`` Pretrained) now, through the safe
    reader: a missing, broken or unsafe one is one error before the runner writes anything, not a traceback
    from inside the runner's initialisation."""
    for path in [*([cfg.load_from] if cfg.get('load_from') and not cfg.get('resume') else []),
                 *pretrained_checkpoints(cfg.get('model') or {})]:
        load_checkpoint_file(path, map_location='cpu')


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
    # Appended to, run after run: an earlier one starts with a JSON object.
    check_writable_file(os.path.join(cfg.work_dir, 'ap_results.jsonl'), parent_may_be_missing=True,
                        own_output=file_starts_with(b'{'))
    model = build_detector(cfg, checkpoint)
    difference = class_names_difference((model.dataset_meta or {}).get('classes'), config_class_names(cfg))
    if difference:
        raise CheckpointMismatchError(f'{checkpoint}: {difference}; evaluate it with the config it was trained '
                                      "with, or set the test dataset's metainfo=dict(classes=...) to its classes")
    cfg.model = model.cfg.model
    return cfg

