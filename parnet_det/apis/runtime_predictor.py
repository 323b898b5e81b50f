"""A detector's exported graph in ONNX Runtime or OpenVINO as a predictor of :class:`~.inferencer.MediaInferencer`:
the same detections JSON as ``tools/infer.py`` (``tools/deploy/infer_runtime.py``).

    predict, dataset_meta = load_runtime_predictor('configs/yolov4_csp_coco.py', 'epoch_300.pth', 'openvino')
    MediaInferencer(predict, dataset_meta, 'out/')(['my_photos/'])

The detector is built and folded as the engine builds it, exported with a
dynamic batch at the config's test geometry (the test size, or with a
``RectLetterbox`` a dynamic height and width: each image its own rectangle, as
``tools/infer.py``), or an exported graph is given, and run in the runtime on
the CPU in fp32 (:class:`~parnet_det.deploy.RuntimeDetector`: the letterbox on
the host, the graph, the head's post-processing on the host); with ``precision='int8'`` the graph is
quantized for the runtime first, calibrated on the config's val images
(:mod:`parnet_det.deploy.quantize`, :mod:`parnet_det.deploy.calibration`).
"""
import copy
import logging
import os.path as osp
import tempfile
from typing import Optional, Sequence, Tuple, Union

from mmengine.config import Config
from mmengine.logging import print_log

from ..deploy import (
    DEFAULT_CALIBRATION_IMAGES,
    PRECISIONS,
    RuntimeDetector,
    calibration_images,
    check_calibration_data,
    runtime_missing,
)
from ..deploy.onnx_export import INPUT_NAME, require
from ..inference import DetectorEngine
from ..utils.config import load_config
from ..utils.fileio import atomic_write, file_sha256
from .inferencer import load_predictor

# The graph's metadata entry naming the checkpoint it was exported from (its SHA-256): tools/deploy/export_onnx.py
# writes it, a graph given with --onnx is refused under another checkpoint.
CHECKPOINT_KEY = 'parnet_det.checkpoint_sha256'


def _read_graph(path: str):
    """The ONNX model of ``path`` (weights and all), or one ValueError for a file that is not one."""
    onnx = require('onnx', 'reading an ONNX graph')
    protobuf = require('google.protobuf.message', 'reading an ONNX graph')
    if not osp.isfile(path):
        raise FileNotFoundError(f'ONNX file {path} does not exist')
    try:
        return onnx.load(path)
    except protobuf.DecodeError as err:
        raise ValueError(f'{path} is not a readable ONNX graph ({err}): cut short or damaged; export it again with '
                         'tools/deploy/export_onnx.py') from err


def stamp_checkpoint(path: str, checkpoint: str) -> None:
    """Write ``checkpoint``'s SHA-256 into the graph's metadata (:data:`CHECKPOINT_KEY`), crash-safe."""
    onnx = require('onnx', 'stamping an ONNX graph')
    model = _read_graph(path)
    onnx.helper.set_model_props(model, {**{entry.key: entry.value for entry in model.metadata_props},
                                        CHECKPOINT_KEY: file_sha256(checkpoint)})
    with atomic_write(path) as f:
        f.write(model.SerializeToString())


def check_onnx_graph(path: str, input_size: Optional[Sequence[int]], batch_size: int, checkpoint: str) -> None:
    """Refuse, before a runtime loads it or an image is read, a graph given with ``--onnx`` that is not a
    readable ONNX file, takes images of another size than the config's test size ``input_size`` (H, W; None:
    a ``RectLetterbox`` config, each image its own rectangle, which needs a graph of dynamic height and width),
    takes a fixed batch where ``batch_size`` (or a last, smaller batch) would not fit, or was exported from
    another checkpoint than ``checkpoint`` (by its stamp; an unstamped graph is run with a warning)."""
    model = _read_graph(path)
    inputs = {value.name: value for value in model.graph.input}
    if INPUT_NAME not in inputs:
        raise ValueError(f'{path} has no input {INPUT_NAME!r} (it has {sorted(inputs)}): not a graph of '
                         'tools/deploy/export_onnx.py')
    dims = [dim.dim_value if dim.HasField('dim_value') else None
            for dim in inputs[INPUT_NAME].type.tensor_type.shape.dim]
    if len(dims) == 4 and input_size is None and dims[2:] != [None, None]:
        raise ValueError(f'{path} takes a fixed {dims[2]}x{dims[3]} input, but the config letterboxes each image to '
                         'its own rectangle (RectLetterbox), as tools/test.py and tools/infer.py: export it again '
                         'without --shape (a dynamic height and width), or leave --onnx out')
    if len(dims) != 4 or (input_size is not None and tuple(dims[2:]) != tuple(input_size)):
        raise ValueError(f'{path} takes images of {dims[2:]} (H, W), the config\'s test size is {list(input_size)}: '
                         'export the graph at this size, or give the config it was exported with')
    if dims[0] is not None and not dims[0] == batch_size == 1:
        raise ValueError(f'{path} takes batches of exactly {dims[0]} images: with --batch-size {batch_size} a batch '
                         '(the last, at least) would not fit; export it with --dynamic-batch')
    stamp = {entry.key: entry.value for entry in model.metadata_props}.get(CHECKPOINT_KEY)
    if stamp is None:
        print_log(f'{path} does not name the checkpoint it was exported from (exported before graphs did): it is '
                  f'run as the graph of {checkpoint} unchecked', logger='current', level=logging.WARNING)
    elif stamp != file_sha256(checkpoint):
        raise ValueError(f'{path} was exported from another checkpoint (SHA-256 {stamp[:12]}...), not from '
                         f'{checkpoint} ({file_sha256(checkpoint)[:12]}...): its detections would be reported under '
                         'the wrong weights; give the checkpoint it was exported from, or export it again')


def load_runtime_predictor(config: Union[str, Config], checkpoint: str, runtime: str, onnx: Optional[str] = None,
                           cfg_options: Optional[dict] = None, score_thr: Optional[float] = None,
                           threads: Optional[int] = None, batch_size: int = 1, precision: str = 'fp32',
                           calibration_count: int = DEFAULT_CALIBRATION_IMAGES,
                           cache_dir: Optional[str] = None) -> Tuple[RuntimeDetector, dict]:
    """The runtime's predictor and the dataset metainfo, as :func:`~.inferencer.load_predictor` returns them.

    Args:
        config (str | Config): A single-stage detector's config (YOLOX, YOLOv4-CSP / YOLOR or RTMDet head).
        checkpoint (str): Its weights (training or deploy form).
        runtime (str): 'onnxruntime' or 'openvino'.
        onnx (str, optional): A graph exported before from this config and checkpoint with a dynamic batch
            (``tools/deploy/export_onnx.py --dynamic-batch``, without ``--shape`` for a ``RectLetterbox``
            config), checked first (:func:`check_onnx_graph`); None: exported here, into a temporary folder.
        cfg_options (dict, optional): Overrides, as ``--cfg-options``.
        score_thr (float, optional): The lowest score the caller keeps (the head's own threshold is lowered).
        threads (int, optional): The runtime's threads.
        batch_size (int): The most images per runtime call (checked against a given graph's batch).
        precision (str): 'fp32', or 'int8': the graph quantized for the runtime, calibrated on
            ``calibration_count`` of the config's val images (its val set must be there: refused before any
            work otherwise).
        calibration_count (int): INT8's calibration images (the val set whole where smaller).
        cache_dir (str, optional): Keeps INT8 graphs and reuses them (per graph, calibration images and options).
    """
    if precision not in PRECISIONS:
        raise ValueError(f'unknown precision {precision!r}; choose from {", ".join(PRECISIONS)}')
    missing = runtime_missing(runtime, precision)
    if missing is not None:
        raise ImportError(missing)
    if precision == 'int8':  # the val images to calibrate on are there, before anything is built
        checked = load_config(config, cfg_options) if isinstance(config, str) else copy.deepcopy(config)
        if cfg_options and not isinstance(config, str):
            checked.merge_from_dict(cfg_options)
        check_calibration_data(checked)
    engine, dataset_meta = load_predictor(config, checkpoint, 'cpu', cfg_options, score_thr=score_thr)
    calibration = calibration_images(engine.cfg, calibration_count) if precision == 'int8' else []
    int8 = dict(precision=precision, calibration=calibration, cache_dir=cache_dir)
    if not isinstance(engine, DetectorEngine):
        raise ValueError('only single-stage detectors export to ONNX; run this config with tools/infer.py')
    if onnx is not None:
        # RuntimeDetector.load's input size, before the runtime compiles the graph.
        settings = engine.preprocess.settings
        size = None if settings.letterbox is not None else engine.input_size or settings.resize_scale[::-1]
        check_onnx_graph(onnx, size, batch_size, checkpoint)
        return RuntimeDetector.load(engine, runtime, onnx, threads, **int8), dataset_meta
    with tempfile.TemporaryDirectory(prefix='parnet_det_onnx_') as folder:
        return RuntimeDetector.export(engine, runtime, osp.join(folder, 'model.onnx'), dynamic_batch=True,
                                      threads=threads, **int8), dataset_meta
