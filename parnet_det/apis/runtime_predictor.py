"""A detector's exported graph in ONNX Runtime or OpenVINO as a predictor of :class:`~.inferencer.MediaInferencer`:
the same detections JSON as ``tools/infer.py`` (``tools/deploy/infer_runtime.py``).

    predict, dataset_meta = load_runtime_predictor('configs/yolov4_csp_coco.py', 'epoch_300.pth', 'openvino')
    MediaInferencer(predict, dataset_meta, 'out/')(['my_photos/'])

The detector is built and folded as the engine builds it, exported with a
dynamic batch at the config's test geometry (the test size, or with a
``RectLetterbox`` a dynamic height and width: each image its own rectangle, as
``tools/infer.py``), or an exported graph is given, and run in the runtime on
the CPU in fp32 (:class:`~parnet_det.deploy.RuntimeDetector`: the letterbox on
the host, the graph, the head's post-processing on the host).
"""
import os.path as osp
import tempfile
from typing import Optional, Tuple, Union

from mmengine.config import Config

from ..deploy import RuntimeDetector
from ..inference import DetectorEngine
from .inferencer import load_predictor


def load_runtime_predictor(config: Union[str, Config], checkpoint: str, runtime: str, onnx: Optional[str] = None,
                           cfg_options: Optional[dict] = None, score_thr: Optional[float] = None,
                           threads: Optional[int] = None) -> Tuple[RuntimeDetector, dict]:
    """The runtime's predictor and the dataset metainfo, as :func:`~.inferencer.load_predictor` returns them.

    Args:
        config (str | Config): A single-stage detector's config (YOLOX, YOLOv4-CSP / YOLOR or RTMDet head).
        checkpoint (str): Its weights (training or deploy form).
        runtime (str): 'onnxruntime' or 'openvino'.
        onnx (str, optional): A graph exported before from this config and checkpoint with a dynamic batch
            (``tools/deploy/export_onnx.py --dynamic-batch``, without ``--shape`` for a ``RectLetterbox``
            config); None: exported here, into a temporary folder.
        cfg_options (dict, optional): Overrides, as ``--cfg-options``.
        score_thr (float, optional): The lowest score the caller keeps (the head's own threshold is lowered).
        threads (int, optional): The runtime's threads.
    """
    engine, dataset_meta = load_predictor(config, checkpoint, 'cpu', cfg_options, score_thr=score_thr)
    if not isinstance(engine, DetectorEngine):
        raise ValueError('only single-stage detectors export to ONNX; run this config with tools/infer.py')
    if onnx is not None:
        return RuntimeDetector.load(engine, runtime, onnx, threads), dataset_meta
    with tempfile.TemporaryDirectory(prefix='parnet_det_onnx_') as folder:
        return RuntimeDetector.export(engine, runtime, osp.join(folder, 'model.onnx'), dynamic_batch=True,
                                      threads=threads), dataset_meta
