"""What a benchmark measures: the models, the settings, and their checks before anything runs."""
import os.path as osp
from dataclasses import dataclass
from typing import List, Optional, Sequence

import torch
from mmengine.config import Config

from ..inference import InferenceOptions
from ..utils.checkpoint import load_checkpoint_file
from ..utils.config import load_config
from .timing import check_precisions, resolve_device

FORMS = ('deploy', 'train')
MODES = ('network', 'end2end')
MMDET_VARIANT = 'mmdet'
# Candidates per image that reach NMS under the controlled workload (see :mod:`.workload`).
DEFAULT_CANDIDATES = 1000


@dataclass
class ModelSpec:
    """A model to benchmark.

    Args:
        name (str): Its name in the reports (the config's file name).
        config (str): Path of its config.
        cfg (Config): The loaded config, ``--cfg-options`` applied.
        checkpoint (str, optional): Weights to load before folding.
        folded (bool): The model is built folded (``deploy=True`` in the config, or a deploy checkpoint of
            ``tools/reparameterize.py``): it has no training form.
    """
    name: str
    config: str
    cfg: Config
    checkpoint: Optional[str] = None
    folded: bool = False


@dataclass
class BenchmarkSettings:
    """What to measure, and how often.

    Args:
        resolutions (Sequence[int]): Square input sides in pixels.
        batch_sizes (Sequence[int]): Images per batch.
        precisions (Sequence[str]): Names from :data:`~.timing.PRECISIONS`.
        forms (Sequence[str]): 'deploy' (ParNet branches folded) and/or 'train'.
        variants (Sequence[str]): 'mmdet' and/or engine fast-path combinations
            (see :mod:`.variants`); the first is the reference of the speed-up column.
        device (str): 'cpu', 'cuda' or 'cuda:N'.
        warmup (int): Untimed iterations before each measurement.
        iters (int): Iterations per timed repeat.
        repeats (int): Timed repeats; the report gives their median, min and max.
        threads (int, optional): CPU threads of torch's intra-op pool; None keeps torch's default.
            On a machine shared with other work, fewer threads than cores avoid the stalls of
            threads waiting for a busy core.
        candidates (int): Score-threshold survivors per image that a model without checkpoint is
            set to give NMS (:func:`~.workload.control_yolox_workload`); 0 leaves its initial head.
        row_time_limit_s (float, optional): Seconds one row may take; a row over it is kept with
            ``status='timeout'`` and the run goes on.
    """
    resolutions: Sequence[int] = (320, 416, 512, 640)
    batch_sizes: Sequence[int] = (1, )
    precisions: Sequence[str] = ('fp32', )
    forms: Sequence[str] = ('deploy', )
    variants: Sequence[str] = (MMDET_VARIANT, )
    device: str = 'cpu'
    warmup: int = 10
    iters: int = 30
    repeats: int = 5
    threads: Optional[int] = None
    candidates: int = DEFAULT_CANDIDATES
    row_time_limit_s: Optional[float] = None


def load_model_specs(config: str, checkpoint: Optional[str] = None, baselines: Sequence[str] = (),
                     cfg_options: Optional[dict] = None) -> List[ModelSpec]:
    """Read the model's config and every baseline's, before anything is measured.

    Args:
        config (str): The model's config.
        checkpoint (str, optional): The model's weights; baselines keep their initialisation.
        baselines (Sequence[str]): Baseline configs; the first is the reference of the FPS ratios.
        cfg_options (dict, optional): ``--cfg-options``, applied to every config alike.

    Returns:
        list[ModelSpec]: The model first, then the baselines in order.

    Raises:
        FileNotFoundError: A config or the checkpoint does not exist.
        CheckpointError: The checkpoint is not readable (see
            :func:`~parnet_det.utils.checkpoint.load_checkpoint_file`).
    """
    # Missing, empty, truncated or unsafe: said now, not after the build.
    meta = (load_checkpoint_file(checkpoint).get('meta') or {}) if checkpoint is not None else {}
    deploy_checkpoint = bool(meta.get('deploy'))
    specs = []
    for path, weights in [(config, checkpoint)] + [(baseline, None) for baseline in baselines]:
        if not osp.isfile(path):
            raise FileNotFoundError(f'config {path} does not exist')
        name = osp.splitext(osp.basename(path))[0]
        cfg = load_config(path, cfg_options)
        folded = bool(cfg.model.get('backbone', {}).get('deploy')) or (weights is not None and deploy_checkpoint)
        specs.append(ModelSpec(name=name, config=path, cfg=cfg, checkpoint=weights, folded=folded))
    return specs


def check_forms(models: Sequence[ModelSpec], forms: Sequence[str]) -> None:
    """Refuse the training form of a model that is built folded: its rows would be mislabelled."""
    folded = [spec.name for spec in models if spec.folded]
    if 'train' in forms and folded:
        raise ValueError(f'form "train" asked for, but {", ".join(folded)} is built folded (deploy=True or a deploy '
                         'checkpoint); measure --forms deploy, or give the training checkpoint')


def check_settings(settings: BenchmarkSettings) -> torch.device:
    """Refuse a device, precision, form or variant that cannot run, before anything is measured.

    Returns:
        torch.device: The device to measure on.
    """
    device = resolve_device(settings.device)
    check_precisions(device, settings.precisions)
    unknown_forms = [form for form in settings.forms if form not in FORMS]
    if unknown_forms:
        raise ValueError(f'unknown form(s) {", ".join(unknown_forms)}; choose from {", ".join(FORMS)}')
    for variant in settings.variants:
        if variant != MMDET_VARIANT:
            for precision in settings.precisions:
                InferenceOptions.from_variant(variant, precision).check(device)
    if settings.candidates < 0:
        raise ValueError(f'candidates {settings.candidates}: give 0 (initial head) or a positive number')
    return device
