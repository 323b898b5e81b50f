"""A detector run in an ONNX runtime: decoded images in, the same ``DetDataSample`` s as the engine's out.

    detector = RuntimeDetector.export(engine, 'openvino', 'work/model.onnx')
    samples = detector([image, ...])           # boxes in original pixels
    parity = detector.parity(pixels)           # against PyTorch, before NMS

The steps, each callable on its own (the benchmark times :meth:`network` and the whole call):

1. :meth:`pixels`: the engine's letterbox (resize, pad) on the host, without the
   normalisation, which is in the graph: the graph's input; in the test's geometry
   (with a ``RectLetterbox``, each image centred in its own rectangle, as
   ``tools/test.py`` and ``tools/infer.py``: the graph takes any height and width);
2. :meth:`network`: the runtime (normalisation, network, box decoding);
3. the head's post-processing on the host after it
   (:func:`~parnet_det.inference.dense_postprocess`: YOLOX's batched NMS, or the
   multi-label test of YOLOv4-CSP and RTMDet), mmcv's NMS; no NMS runs in the graph.
"""
import dataclasses
import math
import os.path as osp
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
from .runtimes import RuntimeSession, open_session

# Tolerances of the parity with PyTorch fp32, per (runtime, precision): boxes in input pixels, scores absolute.
# As the ONNX check's (tools/deploy/export_onnx.py): above what rounding gives on trained and initial weights,
# far below what a wrong channel order or normalisation gives (tens of pixels).
PARITY_TOLERANCES = {('onnxruntime', 'fp32'): (0.05, 1e-3), ('openvino', 'fp32'): (0.05, 1e-3)}
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
        box_atol (float): The boxes' tolerance.
        score_atol (float): The scores' tolerance.
    """
    boxes_max_abs: float
    boxes_rel: float
    scores_max_abs: float
    scores_rel: float
    box_atol: float
    score_atol: float

    @property
    def passed(self) -> bool:
        return self.boxes_max_abs <= self.box_atol and self.scores_max_abs <= self.score_atol

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
    """

    def __init__(self, session: RuntimeSession, module: OnnxExportWrapper, export_s: float = 0.0) -> None:
        self.session, self.module, self.export_s = session, module, export_s
        # The graph normalises: its input is the letterboxed pixels (BatchPreprocessor.letterbox).
        self.preprocess = BatchPreprocessor(module.settings, torch.device('cpu'))
        self.postprocess = dense_postprocess(module.network.bbox_head)
        self.test_cfg = module.test_cfg

    @classmethod
    def export(cls, engine: DetectorEngine, runtime: str, out: str, batch_size: int = 1, dynamic_batch: bool = False,
               threads: Optional[int] = None, device='cpu') -> 'RuntimeDetector':
        """Export the engine's (folded) network to ``out`` and open it in ``runtime``: at the engine's input size,
        or, where it has none (a ``RectLetterbox`` config: each image its own rectangle), with a dynamic height
        and width."""
        module = OnnxExportWrapper(engine.dense_network, engine.preprocess.settings).eval().cpu()
        start = time.perf_counter()
        export_wrapper(module, out, batch_size, dynamic_batch)
        export_s = time.perf_counter() - start
        return cls(open_session(runtime, out, device, threads), module, export_s)

    @classmethod
    def load(cls, engine: DetectorEngine, runtime: str, onnx_path: str, threads: Optional[int] = None,
             device='cpu') -> 'RuntimeDetector':
        """A graph exported before from the same config and weights: one of a fixed input size (the engine then
        runs at it), or one that takes any rectangle (the engine's geometry). A graph of a fixed size is refused
        for a ``RectLetterbox`` config, whose test gives each image its own rectangle."""
        if not osp.isfile(onnx_path):
            raise FileNotFoundError(f'ONNX file {onnx_path} does not exist')
        session = open_session(runtime, onnx_path, device, threads)
        if session.input_size is not None:
            if engine.input_size is None:
                height, width = session.input_size
                raise ValueError(f'{onnx_path} takes a fixed {height}x{width} input, but the config letterboxes each '
                                 'image to its own rectangle (RectLetterbox), as tools/test.py and tools/infer.py: '
                                 'export it again without --shape (a dynamic height and width), or leave --onnx out')
            engine.set_input_size(session.input_size)
        module = OnnxExportWrapper(engine.dense_network, engine.preprocess.settings).eval().cpu()
        return cls(session, module)

    @property
    def input_size(self):
        """(H, W) of the graph's input; None where each image has its own rectangle."""
        return self.module.settings.input_size

    def fields(self) -> dict:
        """What a benchmark row records of the runtime: name, version, target, export and compile seconds."""
        return dict(runtime=self.session.runtime, runtime_version=self.session.version,
                    runtime_target=self.session.target, export_s=self.export_s, compile_s=self.session.compile_s,
                    end2end_nms=END2END_NMS)

    def pixels(self, images: Sequence[ImageInput]):
        """Decoded images -> the graph's input (B, 3, H, W) float32 pixels as numpy, and the per-image metas."""
        with torch.inference_mode():
            batch, metas = self.preprocess.letterbox(check_images(images, self.preprocess.resized_shape))
        return batch.numpy(), metas

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

    def parity(self, pixels: np.ndarray, precision: str = 'fp32') -> RuntimeParity:
        """The runtime's boxes and scores against PyTorch's on ``pixels``, with the tolerances of its precision."""
        box_atol, score_atol = PARITY_TOLERANCES[self.session.runtime, precision]
        got = self.network(pixels)
        with torch.inference_mode():
            expected = self.module(torch.from_numpy(pixels))
        (boxes_max_abs, boxes_rel), (scores_max_abs, scores_rel) = (
            output_errors(actual.float(), reference.float()) for actual, reference in zip(got, expected))
        return RuntimeParity(boxes_max_abs, boxes_rel, scores_max_abs, scores_rel, box_atol, score_atol)
