"""INT8's parity check: COCO box AP of a trained detector in each runtime, fp32 against INT8.

    records = int8_accuracy('configs/demo/yolo_parnet_tiny_synthetic.py', 'epoch_12.pth')
    # one record per runtime and precision (and INT8 remedy): AP, AP50, the change from that runtime's fp32

Every graph sees the same images (the config's val set) through the same steps: the
runtime detector's letterbox, the graph, the head's post-processing on the host
(:class:`~.runtime_detector.RuntimeDetector`), scored by the config's val evaluator
(mmdet's ``CocoMetric``). The fp32 graph is exported once, with a dynamic batch, and each
INT8 graph is quantized from it on the config's val images (:mod:`.calibration`: the
first ``calibration_images`` of them evenly spaced, the same for every runtime and remedy).
"""
import os.path as osp
import tempfile
from typing import Callable, Dict, List, Optional, Sequence

from mmengine.config import Config

from mmdet.registry import DATASETS, METRICS

from ..inference import DetectorEngine
from ..models.builder import build_detector
from ..utils.config import load_config
from .calibration import DEFAULT_CALIBRATION_IMAGES, calibration_images, check_calibration_data
from .onnx_export import OnnxExportWrapper, export_wrapper
from .quantize import Int8Options
from .runtime_detector import RuntimeDetector
from .runtimes import RUNTIMES, runtime_missing

# The INT8 forms the comparison can measure, each against the runtime's fp32: 'default' (.quantize's scope), and
# the remedies for re-parameterised blocks, one change each (per-tensor weights and no bias correction measure what
# the defaults' per-channel scales and bias correction buy; each applies to one runtime).
INT8_REMEDIES = {
    'default': Int8Options(),
    'keep_sse_float': Int8Options(keep_float=('sse', )),
    'keep_first_last_float': Int8Options(keep_float=('first_last', )),
    'per_tensor_weights': Int8Options(per_channel=False),
    'no_bias_correction': Int8Options(bias_correction=False),
}
# The runtime each remedy changes something in (the others apply to both).
REMEDY_RUNTIME = {'per_tensor_weights': 'onnxruntime', 'no_bias_correction': 'openvino'}
# mmdet's CocoMetric keys, in the records' names.
METRIC_KEYS = {'ap': 'coco/bbox_mAP', 'ap50': 'coco/bbox_mAP_50'}


def val_images(cfg: Config) -> List[dict]:
    """Every image of the config's val set: ``img_id``, ``img_path``, ``ori_shape`` (H, W)."""
    dataset = DATASETS.build(dict(cfg.val_dataloader.dataset, lazy_init=False))
    infos = [dataset.get_data_info(index) for index in range(len(dataset))]
    return [dict(img_id=info['img_id'], img_path=info['img_path'], ori_shape=(info['height'], info['width']))
            for info in infos]


def box_ap(predict: Callable, cfg: Config, images: Sequence[dict]) -> Dict[str, float]:
    """COCO box AP and AP50 of ``predict`` (image paths -> ``DetDataSample`` s, boxes in original pixels: a
    :class:`RuntimeDetector` or a :class:`~parnet_det.inference.DetectorEngine`) on ``images``
    (:func:`val_images`), by the config's val evaluator (mmdet's CocoMetric, bbox)."""
    metric = METRICS.build(dict(cfg.val_evaluator, metric='bbox', classwise=False))
    metric.dataset_meta = DATASETS.build(dict(cfg.val_dataloader.dataset, lazy_init=True)).metainfo
    for image in images:
        sample = predict([image['img_path']])[0]
        metric.process({}, [dict(img_id=image['img_id'], ori_shape=image['ori_shape'],
                                 pred_instances=sample.pred_instances.to_dict())])
    metrics = metric.evaluate(len(images))
    return {name: float(metrics.get(key, 0.0)) for name, key in METRIC_KEYS.items()}


def int8_accuracy(config, checkpoint: str, runtimes: Sequence[str] = tuple(RUNTIMES),
                  remedies: Sequence[str] = ('default', ),
                  calibration_count: int = DEFAULT_CALIBRATION_IMAGES, cfg_options: Optional[dict] = None,
                  threads: Optional[int] = None, log: Callable[[str], None] = print) -> List[dict]:
    """fp32 and INT8 box AP of a trained detector in each runtime, on the config's val set.

    Args:
        config (str | Config): A single-stage detector's config (YOLOX, YOLOv4-CSP / YOLOR or RTMDet head) whose
            val set is there (its images calibrate and are scored).
        checkpoint (str): Its trained weights (training or deploy form).
        runtimes (Sequence[str]): Of :data:`~.runtimes.RUNTIMES`.
        remedies (Sequence[str]): INT8 forms of :data:`INT8_REMEDIES` (each only in the runtimes it applies to).
        calibration_count (int): Calibration images (the val set whole where smaller).
        cfg_options (dict, optional): Overrides, as ``--cfg-options``.
        threads (int, optional): The runtimes' threads.
        log (Callable): Receives one line per measurement.

    Returns:
        list[dict]: Per runtime its fp32 record, then one per INT8 form: ``model``, ``backbone`` (its type),
        ``runtime``, ``precision``, ``int8`` (the form; None for fp32), ``ap``, ``ap50``, ``ap_change`` /
        ``ap50_change`` (INT8 minus the runtime's fp32), ``images`` (scored), and for INT8
        ``calibration_images``, ``calibration_s`` and ``int8_scope``.
    """
    unknown = [name for name in remedies if name not in INT8_REMEDIES]
    if unknown:
        raise ValueError(f'unknown INT8 form(s) {", ".join(unknown)}; choose from {", ".join(INT8_REMEDIES)}')
    for runtime in runtimes:
        missing = runtime_missing(runtime)
        if missing is not None:
            raise ImportError(missing)
    cfg = load_config(config, cfg_options) if isinstance(config, str) else config.copy()
    if cfg_options and not isinstance(config, str):
        cfg.merge_from_dict(cfg_options)
    check_calibration_data(cfg)  # before anything is built: without val images there is nothing to score either
    model = build_detector(cfg, checkpoint)
    images = val_images(cfg)
    calibration = calibration_images(cfg, calibration_count)
    engine = DetectorEngine(model, cfg, 'cpu')
    name = osp.splitext(osp.basename(config))[0] if isinstance(config, str) else 'model'
    common = dict(model=name, backbone=type(model.backbone).__name__, images=len(images))
    records = []
    with tempfile.TemporaryDirectory(prefix='parnet_det_int8_ap_') as folder:
        graph = osp.join(folder, 'model.onnx')
        export_wrapper(OnnxExportWrapper(engine.dense_network, engine.preprocess.settings).eval(), graph,
                       dynamic_batch=True)
        for runtime in runtimes:
            fp32 = box_ap(RuntimeDetector.load(engine, runtime, graph, threads), cfg, images)
            records.append(dict(common, runtime=runtime, precision='fp32', int8=None, **fp32))
            log(f'{name} {runtime} fp32: AP {fp32["ap"]:.4f}, AP50 {fp32["ap50"]:.4f}')
            for remedy in remedies:
                if REMEDY_RUNTIME.get(remedy, runtime) != runtime:
                    continue
                options = INT8_REMEDIES[remedy]
                detector = RuntimeDetector.load(engine, runtime, graph, threads, precision='int8',
                                                calibration=calibration, int8=options)
                int8 = box_ap(detector, cfg, images)
                records.append(dict(
                    common, runtime=runtime, precision='int8', int8=remedy, **int8,
                    # (mmdet's CocoMetric rounds AP to 3 decimals: so are the changes, without float noise)
                    ap_change=round(int8['ap'] - fp32['ap'], 3), ap50_change=round(int8['ap50'] - fp32['ap50'], 3),
                    calibration_images=detector.quantized.calibration_images,
                    calibration_s=detector.quantized.calibration_s, int8_scope=detector.quantized.scope))
                log(f'{name} {runtime} int8 {remedy}: AP {int8["ap"]:.3f} ({records[-1]["ap_change"]:+.3f}), '
                    f'AP50 {int8["ap50"]:.3f}; calibrated on {len(calibration)} images in '
                    f'{detector.quantized.calibration_s:.1f} s')
    return records
