"""The inference engine's entry point: a config and a checkpoint in, a ready :class:`DetectorEngine` out."""
import logging
from typing import Optional, Sequence

from mmengine.logging import print_log

from ..inference import DetectorEngine, InferenceOptions
from ..models.builder import build_detector
from ..utils.config import class_names_difference, config_class_names
from ..utils.device import check_device


def init_detector_engine(config, checkpoint: Optional[str] = None, device='cuda:0', *,
                         cfg_options: Optional[dict] = None, input_size: Optional[Sequence[int]] = None,
                         **options) -> DetectorEngine:
    """Build a :class:`~parnet_det.inference.DetectorEngine` from a config file (or Config) and a checkpoint.

    The detector comes from :func:`~parnet_det.models.build_detector` (strict
    loading; a deploy checkpoint of ``tools/reparameterize.py`` loads into the
    folded form directly); the engine folds what is left to fold.

        from parnet_det.apis import init_detector_engine
        engine = init_detector_engine('configs/yolo_parnet_xl_coco.py', 'epoch_300.pth', device='cuda:0',
                                      precision='fp16', cuda_graph=True, parallel_streams=True)
        results = engine(['demo.jpg', image_array])   # DetDataSamples, boxes in original pixels

    Args:
        config (str | Config): The detector's config.
        checkpoint (str, optional): Its weights; None keeps the initialisation.
        device (str | torch.device): Where to run. Defaults to 'cuda:0'.
        cfg_options (dict, optional): Overrides, as ``--cfg-options``.
        input_size (Sequence[int], optional): See :class:`~parnet_det.inference.DetectorEngine`.
        **options: Fields of :class:`~parnet_det.inference.InferenceOptions` (precision,
            parallel_streams, channels_last, compile, compile_mode, cuda_graph).

    A checkpoint whose classes differ from the config's is used with a warning
    naming both lists; ``engine.model.dataset_meta`` keeps the checkpoint's.
    """
    # Refused before anything is built: an unusable device or fast path.
    inference_options = InferenceOptions(**options)
    inference_options.check(check_device(device))
    model = build_detector(config, checkpoint, cfg_options=cfg_options)
    warn_if_classes_differ(model)
    return DetectorEngine(model, model.cfg, device, inference_options, input_size)


def warn_if_classes_differ(model) -> None:
    """Warn, naming both lists, when the classes of ``model``'s checkpoint (``model.dataset_meta``) differ from
    those of its config (``model.cfg``), in names or order."""
    difference = class_names_difference((getattr(model, 'dataset_meta', None) or {}).get('classes'),
                                        config_class_names(model.cfg))
    if difference:
        # The logger prefixes the level: the message itself says no "WARNING".
        print_log(f"{difference}; the detections' labels are the checkpoint's classes", logger='current',
                  level=logging.WARNING)
