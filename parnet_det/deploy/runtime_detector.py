"""A detector run in an ONNX runtime: decoded images in, the same ``DetDataSample`` s as the engine's out.

    detector = RuntimeDetector.export(engine, 'openvino', 'work/model.onnx')
    samples = detector([image, ...])           # boxes in original pixels
    parity = detector.parity(pixels)           # against PyTorch, before NMS

The steps, each callable on its own (the benchmark times :meth:`network` and the whole call):

1. :meth:`pixels`: the engine's letterbox (resize, pad) on the host, without the
   normalisation, which is in the graph: the graph's input; in the test's geometry
   (with a ``RectLetterbox``, each image centred in its own rectangle, as
   ``tools/test.py`` and ``tools/infer.py``: the graph takes any height and width);
2. :meth:`network`: the runtime (normalisation, network, box decoding), in fp32, or in INT8 where
   :meth:`export` / :meth:`load` are given ``precision='int8'`` and calibration images (:mod:`.quantize`);
3. the head's post-processing on the host after it
   (:func:`~parnet_det.inference.dense_postprocess`: YOLOX's batched NMS, or the
   multi-label test of YOLOv4-CSP and RTMDet), mmcv's NMS; no NMS runs in the graph.
"""
import dataclasses
import hashlib
import math
import os
import os.path as osp
import tempfile
import time
from dataclasses import dataclass
from typing import List, Optional, Sequence

import numpy as np
import torch

from mmdet.structures import DetDataSample

from ..inference import BatchPreprocessor, DetectorEngine, as_data_samples, dense_postprocess
from ..inference.inputs import check_images
from ..inference.preprocess import ImageInput
from .onnx_check import output_errors
from .onnx_export import OnnxExportWrapper, export_wrapper
from .quantize import SUFFIXES, Int8Options, QuantizedGraph, cache_name, float_convs, quantize_graph
from .runtimes import PRECISIONS, RuntimeSession, graph_input, open_session

# Tolerances of the parity with PyTorch fp32, per (runtime, precision): boxes in input pixels, scores absolute.
# fp32 as the ONNX check's (tools/deploy/export_onnx.py): above what rounding gives on trained and initial weights,
# far below what a wrong channel order or normalisation gives (tens of pixels).
PARITY_TOLERANCES = {('onnxruntime', 'fp32'): (0.05, 1e-3), ('openvino', 'fp32'): (0.05, 1e-3)}
# INT8 outputs differ from fp32 by the quantization's error, which on random weights (the benchmark's) is as large
# as a broken graph's (scores 0.6-0.8 relative on the demo detector with the controlled workload): an INT8 graph's
# parity records its errors and fails only on outputs that are not finite; its accuracy is checked on trained
# detectors instead (COCO AP, parnet_det.deploy.runtime_accuracy).
INT8_PARITY_TOLERANCES = (math.inf, math.inf)
# How the end-to-end rows of a runtime get their detections.
END2END_NMS = ('the project\'s post-processing on the host after the runtime (mmcv NMS): YOLOX heads '
               'postprocess_dense_detections, YOLOv4-CSP heads postprocess_multilabel_detections, RTMDet heads the '
               'same with the clip before NMS')


@dataclass
class RuntimeParity:
    """A runtime's dense outputs against PyTorch's (the exported module, fp32), before any threshold or NMS.

    Args:
        boxes_max_abs (float): Max absolute error of the boxes (input pixels).
        boxes_rel (float): Error norm / reference norm of the boxes.
        scores_max_abs (float): Max absolute error of the scores.
        scores_rel (float): The same, relative.
        box_atol (float): The boxes' tolerance (inf for INT8: only its outputs' finiteness is checked).
        score_atol (float): The scores' tolerance (as the boxes').
    """
    boxes_max_abs: float
    boxes_rel: float
    scores_max_abs: float
    scores_rel: float
    box_atol: float
    score_atol: float

    @property
    def passed(self) -> bool:
        errors = (self.boxes_max_abs, self.boxes_rel, self.scores_max_abs, self.scores_rel)
        return (all(map(math.isfinite, errors)) and self.boxes_max_abs <= self.box_atol
                and self.scores_max_abs <= self.score_atol)

    def fields(self) -> dict:
        """The row fields: ``parity_<field>`` and ``parity_passed``; a non-finite error as its name ('inf',
        'nan': JSON has no such numbers), which fails the parity."""
        return dict({f'parity_{key}': value if math.isfinite(value) else str(value)
                     for key, value in dataclasses.asdict(self).items()}, parity_passed=self.passed)


class RuntimeDetector:
    """An exported detector in a runtime, with the engine's pre- and post-processing around it.

    Args:
        session (RuntimeSession): The runtime holding the graph.
        module (OnnxExportWrapper): What the graph was exported from (its settings, head and ``test_cfg``;
            the PyTorch side of :meth:`parity`).
        export_s (float): Seconds the export took (0 for a graph exported before).
        quantized (QuantizedGraph, optional): The INT8 graph the session runs; None for the fp32 graph.
    """

    def __init__(self, session: RuntimeSession, module: OnnxExportWrapper, export_s: float = 0.0,
                 quantized: Optional[QuantizedGraph] = None) -> None:
        self.session, self.module, self.export_s, self.quantized = session, module, export_s, quantized
        # The graph normalises: its input is the letterboxed pixels (BatchPreprocessor.letterbox).
        self.preprocess = BatchPreprocessor(module.settings, torch.device('cpu'))
        self.postprocess = dense_postprocess(module.network.bbox_head)
        self.test_cfg = module.test_cfg

    @classmethod
    def export(cls, engine: DetectorEngine, runtime: str, out: str, batch_size: int = 1, dynamic_batch: bool = False,
               threads: Optional[int] = None, device='cpu', precision: str = 'fp32',
               calibration: Sequence[ImageInput] = (), int8: Int8Options = Int8Options(),
               cache_dir: Optional[str] = None, session_options: Sequence[str] = ()) -> 'RuntimeDetector':
        """Export the engine's (folded) network to ``out`` and open it in ``runtime``: at the engine's input size,
        or, where it has none (a ``RectLetterbox`` config: each image its own rectangle), with a dynamic height
        and width. With ``precision='int8'``, the graph is quantized first (:meth:`quantize`); the other
        arguments as :meth:`quantize`'s and :func:`~.runtimes.open_session`'s."""
        check_precision(precision, calibration)
        module = OnnxExportWrapper(engine.dense_network, engine.preprocess.settings).eval().cpu()
        start = time.perf_counter()
        export_wrapper(module, out, batch_size, dynamic_batch)
        export_s = time.perf_counter() - start
        if precision == 'int8':
            batch = None if dynamic_batch else batch_size
            return cls.quantize(module, runtime, out, batch, calibration, int8, cache_dir, threads, session_options,
                                export_s)
        return cls(open_session(runtime, out, device, threads, session_options), module, export_s)

    @classmethod
    def load(cls, engine: DetectorEngine, runtime: str, onnx_path: str, threads: Optional[int] = None,
             device='cpu', precision: str = 'fp32', calibration: Sequence[ImageInput] = (),
             int8: Int8Options = Int8Options(), cache_dir: Optional[str] = None,
             session_options: Sequence[str] = ()) -> 'RuntimeDetector':
        """A graph exported before from the same config and weights: one of a fixed input size (the engine then
        runs at it), or one that takes any rectangle (the engine's geometry). A graph of a fixed size is refused
        for a ``RectLetterbox`` config, whose test gives each image its own rectangle. With ``precision='int8'``
        the fp32 graph is quantized here (:meth:`quantize`), into ``cache_dir`` or a temporary folder."""
        check_precision(precision, calibration)
        if not osp.isfile(onnx_path):
            raise FileNotFoundError(f'ONNX file {onnx_path} does not exist')
        session = None
        if precision == 'int8':
            batch, input_size = graph_input(onnx_path)
        else:
            session = open_session(runtime, onnx_path, device, threads, session_options)
            batch, input_size = None, session.input_size
        if input_size is not None:
            if engine.input_size is None:
                height, width = input_size
                raise ValueError(f'{onnx_path} takes a fixed {height}x{width} input, but the config letterboxes each '
                                 'image to its own rectangle (RectLetterbox), as tools/test.py and tools/infer.py: '
                                 'export it again without --shape (a dynamic height and width), or leave --onnx out')
            engine.set_input_size(input_size)
        module = OnnxExportWrapper(engine.dense_network, engine.preprocess.settings).eval().cpu()
        if session is not None:
            return cls(session, module)
        return cls.quantize(module, runtime, onnx_path, batch, calibration, int8, cache_dir, threads, session_options)

    @classmethod
    def quantize(cls, module: OnnxExportWrapper, runtime: str, onnx_path: str, batch_size: Optional[int],
                 calibration: Sequence[ImageInput], int8: Int8Options = Int8Options(),
                 cache_dir: Optional[str] = None, threads: Optional[int] = None, session_options: Sequence[str] = (),
                 export_s: float = 0.0) -> 'RuntimeDetector':
        """The fp32 graph ``onnx_path`` of ``module``, quantized for ``runtime`` and opened in it (on the CPU).

        Args:
            module (OnnxExportWrapper): What the graph was exported from.
            runtime (str): 'onnxruntime' or 'openvino'.
            onnx_path (str): The fp32 graph.
            batch_size (int, optional): The graph's fixed batch (each calibration image repeated to fill it);
                None for a dynamic batch.
            calibration (Sequence): Images (paths or HWC uint8 BGR arrays) letterboxed as the graph's input, one
                calibration batch each (:func:`~.calibration.calibration_images`: the config's val images).
            int8 (Int8Options): What to keep in float, and the runtimes' choices.
            cache_dir (str, optional): Keeps the quantized graph per graph, calibration images and options, and
                reuses it (``calibration_s`` 0); None: a temporary folder, removed once the runtime has it.
            threads (int, optional): The runtime's intra-op threads.
            session_options (Sequence[str]): Stream-parallel settings (:data:`~.runtimes.SESSION_OPTIONS`).
            export_s (float): Seconds the fp32 export took, for :meth:`fields`.
        """
        images = list(calibration)
        if cache_dir is not None:
            os.makedirs(cache_dir, exist_ok=True)
            key = '\n'.join(image if isinstance(image, str) else hashlib.sha256(image.tobytes()).hexdigest()
                            for image in images)
            return cls._quantized(module, runtime, onnx_path, batch_size, images, int8,
                                  osp.join(cache_dir, cache_name(runtime, onnx_path, key, int8)), threads,
                                  session_options, export_s)
        with tempfile.TemporaryDirectory(prefix='parnet_det_int8_') as folder:
            return cls._quantized(module, runtime, onnx_path, batch_size, images, int8,
                                  osp.join(folder, f'model{SUFFIXES[runtime]}'), threads, session_options, export_s)

    @classmethod
    def _quantized(cls, module, runtime, onnx_path, batch_size, images, int8, out, threads, session_options,
                   export_s) -> 'RuntimeDetector':
        preprocess = BatchPreprocessor(module.settings, torch.device('cpu'))
        if osp.isfile(out):  # from the cache
            quantized = QuantizedGraph(out, runtime, len(images), 0.0, float_convs(onnx_path, int8.keep_float),
                                       int8.describe(runtime), cached=True)
        else:
            batches = [np.repeat(letterboxed(preprocess, [image])[0], batch_size or 1, axis=0) for image in images]
            quantized = quantize_graph(runtime, onnx_path, out, batches, int8)
        session = open_session(runtime, quantized.path, 'cpu', threads, session_options)
        return cls(session, module, export_s, quantized)

    @property
    def input_size(self):
        """(H, W) of the graph's input; None where each image has its own rectangle."""
        return self.module.settings.input_size

    @property
    def precision(self) -> str:
        """'int8' for a quantized graph, else 'fp32'."""
        return 'fp32' if self.quantized is None else 'int8'

    def fields(self) -> dict:
        """What a benchmark row records of the runtime: name, version, target, precision, export and compile
        seconds, and for INT8 the calibration (images, seconds: apart from latency, as the export) and scope."""
        fields = dict(runtime=self.session.runtime, runtime_version=self.session.version,
                      runtime_target=self.session.target, runtime_precision=self.precision,
                      runtime_options=list(self.session.options), export_s=self.export_s,
                      compile_s=self.session.compile_s, end2end_nms=END2END_NMS)
        if self.quantized is not None:
            fields.update(calibration_images=self.quantized.calibration_images,
                          calibration_s=self.quantized.calibration_s, int8_scope=self.quantized.scope,
                          int8_float_convs=len(self.quantized.float_convs))
        return fields

    def pixels(self, images: Sequence[ImageInput]):
        """Decoded images -> the graph's input (B, 3, H, W) float32 pixels as numpy, and the per-image metas."""
        return letterboxed(self.preprocess, images)

    def network(self, pixels: np.ndarray):
        """The runtime on the graph's input: ``boxes`` and ``scores`` tensors."""
        return self.session(pixels)

    def __call__(self, images: Sequence[ImageInput]) -> List[DetDataSample]:
        """Detect objects in ``images`` (paths or HWC uint8 BGR arrays): boxes in original pixels."""
        pixels, metas = self.pixels(images)
        boxes, scores = self.network(pixels)
        with torch.inference_mode():
            instances = self.postprocess(boxes, scores, metas, self.test_cfg)
        return as_data_samples(metas, instances)

    def parity(self, pixels: np.ndarray) -> RuntimeParity:
        """The runtime's boxes and scores against PyTorch's fp32 on ``pixels``, with the tolerances of the graph's
        precision (:data:`PARITY_TOLERANCES`; INT8: :data:`INT8_PARITY_TOLERANCES`)."""
        got = self.network(pixels)
        with torch.inference_mode():
            expected = self.module(torch.from_numpy(pixels))
        (boxes_max_abs, boxes_rel), (scores_max_abs, scores_rel) = (
            output_errors(actual.float(), reference.float()) for actual, reference in zip(got, expected))
        box_atol, score_atol = (PARITY_TOLERANCES[self.session.runtime, 'fp32'] if self.quantized is None
                                else INT8_PARITY_TOLERANCES)
        return RuntimeParity(boxes_max_abs, boxes_rel, scores_max_abs, scores_rel, box_atol, score_atol)


def letterboxed(preprocess: BatchPreprocessor, images: Sequence[ImageInput]):
    """Decoded images -> a graph's input (B, 3, H, W) float32 pixels as numpy, and the per-image metas."""
    with torch.inference_mode():
        batch, metas = preprocess.letterbox(check_images(images, preprocess.resized_shape))
    return batch.numpy(), metas


def check_precision(precision: str, calibration: Sequence[ImageInput]) -> None:
    """Refuse, before any work, a precision no runtime graph has, or INT8 without calibration images."""
    if precision not in PRECISIONS:
        raise ValueError(f'unknown runtime precision {precision!r}; choose from {", ".join(PRECISIONS)}')
    if precision == 'int8' and not len(calibration):
        raise ValueError('INT8 needs calibration images (parnet_det.deploy.calibration_images: the config\'s val '
                         'images)')
