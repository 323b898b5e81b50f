"""What a benchmark measures: the models, the settings, and their checks before anything runs."""
import os.path as osp
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

import torch
from mmengine.config import Config

from ..deploy import RuntimeVariant
from ..inference import InferenceOptions
from ..inference.fast_paths import check_precision
from ..utils.checkpoint import load_checkpoint_file
from ..utils.config import load_config
from .timing import resolve_device

FORMS = ('deploy', 'train')
MODES = ('network', 'end2end')
MMDET_VARIANT = 'mmdet'
# Candidates per image that reach NMS under the controlled workload (see :mod:`.workload`).
DEFAULT_CANDIDATES = 1000
# Seconds a timed repeat lasts at least, by device type: long against the clock's and the scheduler's
# granularity, short enough for several repeats per model and setting.
DEFAULT_MIN_REPEAT_S = dict(cpu=1.0, cuda=0.2)


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
        precisions (Sequence[str]): Names from :data:`~parnet_det.inference.fast_paths.PRECISION_DTYPES`.
        forms (Sequence[str]): 'deploy' (ParNet branches folded) and/or 'train'.
        variants (Sequence[str]): 'mmdet', engine fast-path combinations and/or runtimes ('onnxruntime',
            'openvino', their INT8 forms 'onnxruntime-int8', 'openvino-int8', and stream-parallel settings after
            '+'; see :mod:`.variants`); the first is the reference of the speed-up column. A runtime
            that cannot run here (not installed, not fp32, not the CPU) is skipped with one line.
        modes (Sequence[str]): 'network' (normalisation, network and box decoding, no NMS: RTMDet's protocol)
            and/or 'end2end' (see :mod:`.variants`).
        device (str): 'cpu', 'cuda' or 'cuda:N'.
        warmup (int): Untimed iterations before each measurement.
        iters (int): Iterations per timed repeat, at least.
        repeats (int): Timed repeats, the models' alternating (A B A B ...); the report gives their median,
            min and max, and each ratio's spread over them.
        min_repeat_s (float, optional): Seconds a timed repeat lasts at least (more iterations as needed);
            None: :data:`DEFAULT_MIN_REPEAT_S` of the device; 0: exactly ``iters`` iterations.
        threads (int, optional): CPU threads of torch's intra-op pool; None keeps torch's default.
            On a machine shared with other work, fewer threads than cores avoid the stalls of
            threads waiting for a busy core.
        candidates (int): Score-threshold survivors per image that a model without checkpoint is
            set to give NMS (:func:`~.workload.control_yolox_workload`); 0 leaves its initial head.
        row_time_limit_s (float, optional): Seconds one row may take for its set-up and warm-up, and for
            each of its timed repeats; a row over it is kept with ``status='timeout'`` and the run goes on.
        mixed_workloads (bool): Allow models with a checkpoint beside models with the controlled workload
            (:func:`check_workloads`); every row then says so.
    """
    resolutions: Sequence[int] = (320, 416, 512, 640)
    batch_sizes: Sequence[int] = (1, )
    precisions: Sequence[str] = ('fp32', )
    forms: Sequence[str] = ('deploy', )
    variants: Sequence[str] = (MMDET_VARIANT, )
    modes: Sequence[str] = MODES
    device: str = 'cpu'
    warmup: int = 5
    iters: int = 1
    repeats: int = 5
    min_repeat_s: Optional[float] = None
    threads: Optional[int] = None
    candidates: int = DEFAULT_CANDIDATES
    row_time_limit_s: Optional[float] = None
    mixed_workloads: bool = False


@dataclass(frozen=True)
class Recipe:
    """Detectors compared with one baseline because they share its neck, head and training recipe.

    Args:
        name (str): How the reports name the pair's recipe.
        baseline (str): The config name every ratio of ``models`` is taken against.
        models (Sequence[str]): Config names, in the order a run cut short should have measured them.

    Config names are paths under ``configs/`` without ``.py`` (e.g. ``demo/yolo_parnet_tiny_synthetic``);
    rows name a model by the file's base name.
    """
    name: str
    baseline: str
    models: Sequence[str]


def pair_recipe(baseline: str, models: Sequence[str], recipes: Sequence[Recipe]) -> Recipe:
    """``models`` against ``baseline`` (a ``--baseline`` given by hand), named as the recipe of ``recipes``
    that holds them all (the reports head each pair with its recipe), else as the user's own pair."""
    name = next((recipe.name for recipe in recipes
                 if recipe.baseline == baseline and set(models) <= {recipe.baseline, *recipe.models}),
                'the pair given on the command line')
    return Recipe(name, baseline, models)


def recipe_models(recipes: Sequence[Recipe]) -> List[str]:
    """Every config name of ``recipes``, each baseline before its models."""
    return list(dict.fromkeys(name for recipe in recipes for name in (recipe.baseline, *recipe.models)))


def baselines_of(recipes: Sequence[Recipe]) -> Dict[str, str]:
    """Model name (as rows name it) -> the baseline its ratios are taken against (a baseline's is itself)."""
    return {osp.basename(name): osp.basename(recipe.baseline)
            for recipe in recipes for name in (recipe.baseline, *recipe.models)}


def load_model_specs(config: str, checkpoint: Optional[str] = None, baselines: Sequence[str] = (),
                     cfg_options: Optional[dict] = None,
                     baseline_checkpoints: Optional[Dict[str, str]] = None) -> List[ModelSpec]:
    """Read the model's config and every baseline's, before anything is measured.

    Args:
        config (str): The model's config.
        checkpoint (str, optional): The model's weights.
        baselines (Sequence[str]): Baseline configs; the first is the reference of the FPS ratios.
        cfg_options (dict, optional): ``--cfg-options``, applied to every config alike.
        baseline_checkpoints (dict, optional): Baseline config (as in ``baselines``) -> its weights; the
            others keep their initialisation.

    Returns:
        list[ModelSpec]: The model first, then the baselines in order.

    Raises:
        FileNotFoundError: A config or a checkpoint does not exist.
        ValueError: A baseline checkpoint names no baseline.
        CheckpointError: A checkpoint is not readable (see
            :func:`~parnet_det.utils.checkpoint.load_checkpoint_file`).
    """
    baseline_checkpoints = dict(baseline_checkpoints or {})
    unknown = [path for path in baseline_checkpoints if path not in baselines]
    if unknown:
        raise ValueError(f'--baseline-checkpoint {unknown[0]}=...: {unknown[0]} is not a --baseline; give the '
                         'same config path as its --baseline')
    specs = []
    for path, weights in [(config, checkpoint)] + [(baseline, baseline_checkpoints.get(baseline))
                                                   for baseline in baselines]:
        if not osp.isfile(path):
            raise FileNotFoundError(f'config {path} does not exist')
        # Missing, empty, truncated or unsafe: said now, not after the build.
        meta = (load_checkpoint_file(weights).get('meta') or {}) if weights is not None else {}
        name = osp.splitext(osp.basename(path))[0]
        cfg = load_config(path, cfg_options)
        folded = bool(cfg.model.get('backbone', {}).get('deploy')) or bool(meta.get('deploy'))
        specs.append(ModelSpec(name=name, config=path, cfg=cfg, checkpoint=weights, folded=folded))
    return specs


def check_workloads(models: Sequence[ModelSpec], mixed_workloads: bool = False) -> None:
    """Refuse checkpoints for some models and the controlled workload for others: their end-to-end rows would
    time different post-processing work (real detections against calibrated ones), unless asked for."""
    with_weights = [spec.name for spec in models if spec.checkpoint is not None]
    without = [spec.name for spec in models if spec.checkpoint is None]
    if with_weights and without and not mixed_workloads:
        raise ValueError(f'{", ".join(with_weights)} run with a checkpoint but {", ".join(without)} with the '
                         'controlled workload: they would do different NMS work; give every model its weights '
                         '(CHECKPOINT, --baseline-checkpoint CONFIG=CKPT), none, or --mixed-workloads')


def min_repeat_seconds(settings: BenchmarkSettings, device: torch.device) -> float:
    """The seconds a timed repeat lasts at least on ``device``."""
    return DEFAULT_MIN_REPEAT_S[device.type] if settings.min_repeat_s is None else settings.min_repeat_s


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
    if 'int8' in settings.precisions:
        raise ValueError('int8 is no PyTorch precision here: INT8 runs in the runtimes, as the variants '
                         'onnxruntime-int8 and openvino-int8 (--variants onnxruntime-int8 openvino-int8, at '
                         '--precisions fp32)')
    for precision in settings.precisions:
        check_precision(device, precision)
    unknown_forms = [form for form in settings.forms if form not in FORMS]
    if unknown_forms:
        raise ValueError(f'unknown form(s) {", ".join(unknown_forms)}; choose from {", ".join(FORMS)}')
    unknown_modes = [mode for mode in settings.modes if mode not in MODES]
    if unknown_modes:
        raise ValueError(f'unknown mode(s) {", ".join(unknown_modes)}; choose from {", ".join(MODES)}')
    for variant in settings.variants:
        if variant != MMDET_VARIANT and RuntimeVariant.parse(variant) is None:
            for precision in settings.precisions:
                InferenceOptions.from_variant(variant, precision).check(device)
    if settings.min_repeat_s is not None and settings.min_repeat_s < 0:
        raise ValueError(f'min_repeat_s {settings.min_repeat_s}: give 0 (fixed iterations) or more seconds')
    if settings.candidates < 0:
        raise ValueError(f'candidates {settings.candidates}: give 0 (initial head) or a positive number')
    return device
