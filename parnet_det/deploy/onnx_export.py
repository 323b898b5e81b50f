"""ONNX export of a deployed (folded) YOLO-style detector, and its check with onnxruntime.

    from parnet_det.deploy import check_onnx_against_pytorch, export_onnx
    exported = export_onnx('configs/yolo_parnet_xl_coco.py', 'deploy.pth', 'yolo_parnet_xl.onnx',
                           input_size=(640, 640))
    check = check_onnx_against_pytorch(exported.path, exported.module)
    assert check.passed

The graph (:class:`OnnxExportWrapper`) takes ``images``: the letterboxed batch
in pixel values, float32 (B, 3, H, W), channels in the decoded order (BGR, as
``mmcv.imread`` gives), resized as the test pipeline's ``Resize`` and padded
with its pad value; see :class:`~parnet_det.inference.BatchPreprocessor`,
whose steps before normalisation these are. The graph normalises (and
reverses the channels) as the config's data preprocessor does, runs the
folded network and decodes the boxes. It returns

- ``boxes`` (B, N, 4): (x1, y1, x2, y2) in input pixels, fp32;
- ``scores`` (B, N, num_classes): class probability x objectness, fp32.

NMS is not in the graph, so that its outputs keep fixed shapes and the NMS
is the serving side's choice. Run it outside, e.g. with
``parnet_det.inference.postprocess_dense_detections(boxes, scores, metas, test_cfg)``
(``metas``: one dict per image with ``scale_factor`` (w, h) of its resize,
``test_cfg``: the head's, as :attr:`OnnxExportWrapper.test_cfg` holds it),
which gives mmdet's detections in original-image pixels, or with any NMS.

Only YOLOX-style heads export their decoding; onnx, onnxscript and onnxruntime
come from ``requirements/deploy.txt`` and are imported only when used.
"""
import importlib
import os
import os.path as osp
import uuid
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from torch.onnx._constants import ONNX_MAX_OPSET, ONNX_MIN_OPSET

from ..inference import (
    DenseDetectorNetwork,
    DetectorEngine,
    PreprocessSettings,
    per_channel,
    postprocess_dense_detections,
)
from ..models.builder import build_detector
from ..utils.fileio import check_writable_file

INPUT_NAME = 'images'
OUTPUT_NAMES = ('boxes', 'scores')
INSTALL_HINT = 'pip install -r requirements/deploy.txt'


def _require(module_name: str, purpose: str):
    """Import an optional deploy dependency, or say how to install it."""
    try:
        return importlib.import_module(module_name)
    except ImportError as err:
        raise ImportError(f'{purpose} needs {module_name}, which is not installed: {INSTALL_HINT}') from err


class OnnxExportWrapper(nn.Module):
    """Normalisation, network and box decoding of a YOLOX-style detector: what the ONNX graph computes.

    Args:
        network (DenseDetectorNetwork): The (folded, eval-mode) network; its
            head must decode boxes (a ``YOLOXHead``).
        settings (PreprocessSettings): The config's pre-processing: input size,
            pad pixel, ``mean`` / ``std`` and ``bgr_to_rgb``.
    """

    def __init__(self, network: DenseDetectorNetwork, settings: PreprocessSettings) -> None:
        super().__init__()
        if not network.decodes_boxes:
            raise ValueError(f'{type(network.bbox_head).__name__}: only YOLOX-style heads (YOLOXHead) export their '
                             'box decoding to ONNX; this head decodes in mmdet\'s predict_by_feat')
        self.network = network
        self.settings = settings
        # Non-persistent: the normalisation comes from the config, not from the checkpoint.
        self.register_buffer('mean', per_channel(settings.mean) if settings.mean is not None else None,
                             persistent=False)
        self.register_buffer('std', per_channel(settings.std) if settings.std is not None else None, persistent=False)

    @property
    def test_cfg(self):
        """The head's ``test_cfg`` (score threshold, NMS), for the NMS that runs after the graph."""
        return self.network.bbox_head.test_cfg

    def forward(self, images: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        # The same steps, in the same order, as BatchPreprocessor after its letterbox.
        if self.settings.bgr_to_rgb:
            images = images.flip(1)
        if self.mean is not None:
            images = (images - self.mean) / self.std
        return self.network(images)

    def letterboxed_inputs(self, batch_size: int, seed: int = 0) -> torch.Tensor:
        """A batch shaped like the graph's input: random pixels over the top 3/4 of the rows (a landscape
        image letterboxed), the pad pixel below."""
        height, width = self.settings.input_size
        gen = torch.Generator().manual_seed(seed)
        pad = torch.tensor(self.settings.pad_pixel, dtype=torch.float32).view(1, 3, 1, 1)
        images = pad.expand(batch_size, 3, height, width).clone()
        content_rows = max(1, height * 3 // 4)
        images[:, :, :content_rows] = torch.randint(0, 256, (batch_size, 3, content_rows, width), generator=gen)
        return images


@dataclass
class OnnxExport:
    """What :func:`export_onnx` wrote.

    Args:
        path (str): The ONNX file (weights inside it, no external data).
        module (OnnxExportWrapper): The exported module, eval mode on the CPU,
            to compare the file with (:func:`check_onnx_against_pytorch`).
        input_name (str): The graph's input, (B, 3, H, W) BGR pixels.
        output_names (tuple[str, str]): ``boxes`` and ``scores``.
        input_shape (tuple): (B, 3, H, W); B is the string 'batch' with a dynamic batch.
        opset (int): The ONNX opset of the file.
    """
    path: str
    module: OnnxExportWrapper
    input_name: str
    output_names: Tuple[str, str]
    input_shape: tuple
    opset: int


def export_onnx(config, checkpoint: str, out: str, input_size: Optional[Sequence[int]] = None,
                batch_size: int = 1, dynamic_batch: bool = False, opset: Optional[int] = None,
                cfg_options: Optional[dict] = None) -> OnnxExport:
    """Build a detector, load its weights, fold it and export it to ONNX with ``torch.onnx.export(dynamo=True)``.

    A training checkpoint is folded after loading; a deploy checkpoint (from
    ``tools/reparameterize.py``, ``meta.deploy``) loads into the folded form.
    ``out`` is written through a temporary file next to it and only replaced
    once the export has succeeded.

    Args:
        config (str | Config): The detector's config (a YOLOX-style head).
        checkpoint (str): Its weights, training or deploy form.
        out (str): The ONNX file to write.
        input_size (Sequence[int], optional): (H, W), or one side for a square;
            defaults to the config's test ``Resize`` scale.
        batch_size (int): The batch size of the graph (with ``dynamic_batch``,
            only that of the example traced). Defaults to 1.
        dynamic_batch (bool): Make the batch dimension dynamic. Defaults to False.
        opset (int, optional): The ONNX opset; defaults to the exporter's.
        cfg_options (dict, optional): Overrides, as ``--cfg-options``.

    Returns:
        OnnxExport: The file, the exported module, input / output names and shapes.
    """
    if batch_size < 1:
        raise ValueError(f'batch_size must be at least 1, got {batch_size}')
    if opset is not None and not ONNX_MIN_OPSET <= opset <= ONNX_MAX_OPSET:
        raise ValueError(f'opset {opset} is not one torch exports ({ONNX_MIN_OPSET} to {ONNX_MAX_OPSET})')
    check_writable_file(out, parent_may_be_missing=True)
    # The dynamo exporter translates through onnxscript and writes with onnx; refuse before building anything.
    for module_name in ('onnx', 'onnxscript'):
        _require(module_name, 'ONNX export')
    # Loaded strictly (deploy checkpoints into the folded form); the engine folds and evals.
    model = build_detector(config, checkpoint, cfg_options=cfg_options)
    engine = DetectorEngine(model, model.cfg, 'cpu', input_size=input_size)
    module = OnnxExportWrapper(engine.dense_network, engine.preprocess.settings).eval()

    dynamic_shapes = None
    traced_batch = batch_size
    if dynamic_batch:
        dynamic_shapes = {INPUT_NAME: {0: torch.export.Dim('batch')}}
        # torch.export specialises a dimension of size 1 to a constant, so trace a dynamic batch with two images.
        traced_batch = max(batch_size, 2)
    example = module.letterboxed_inputs(traced_batch)

    out_dir = osp.dirname(osp.abspath(out))
    os.makedirs(out_dir, exist_ok=True)
    # Next to OUT (same file system, so the rename is atomic) and unique, so concurrent exports do not collide.
    partial = osp.join(out_dir, f'.{osp.basename(out)}.{uuid.uuid4().hex[:8]}.partial')
    try:
        # Weights inside the file (external_data=False): the file is then renamed as a whole, and a
        # deployed detector is far below protobuf's 2 GB limit.
        program = torch.onnx.export(module, (example, ), partial, dynamo=True, external_data=False,
                                    input_names=[INPUT_NAME], output_names=list(OUTPUT_NAMES),
                                    opset_version=opset, dynamic_shapes=dynamic_shapes, verbose=False)
        written = program.model.opset_imports['']
        if opset is not None and written != opset:
            # Below its own opset the exporter converts down and, when that fails, keeps its own.
            raise ValueError(f'the exporter could not convert the graph to opset {opset} (it wrote opset '
                             f'{written}); choose another --opset, e.g. {written}')
        os.replace(partial, out)
    finally:
        if osp.exists(partial):
            os.remove(partial)
    height, width = module.settings.input_size
    return OnnxExport(path=out, module=module, input_name=INPUT_NAME, output_names=OUTPUT_NAMES,
                      input_shape=('batch' if dynamic_batch else batch_size, 3, height, width),
                      opset=written)


def _errors(actual: torch.Tensor, expected: torch.Tensor) -> Tuple[float, float]:
    """Max absolute error and relative error (error norm / reference norm); inf where only one side is finite,
    either is NaN or the shapes differ."""
    if actual.shape != expected.shape:
        return float('inf'), float('inf')
    diff = (actual - expected).abs()
    diff[actual == expected] = 0  # equal infinities agree
    diff = diff.nan_to_num(nan=float('inf'))
    if not diff.numel():
        return 0.0, 0.0
    relative = diff.norm() / expected.nan_to_num(nan=0, posinf=0, neginf=0).norm().clamp_min(1e-12)
    return diff.max().item(), relative.item()


def _nearest(boxes: torch.Tensor, others: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Distance (max over coordinates, px) from each box to its nearest among ``others``, and that one's index."""
    # In chunks: a detector can keep thousands of boxes, and the full distance matrix grows with their square.
    nearest = [torch.cdist(chunk, others, p=float('inf')).min(1) for chunk in boxes.split(1024)]
    return torch.cat([found.values for found in nearest]), torch.cat([found.indices for found in nearest])


def _compare_detections(got, expected) -> Tuple[float, int]:
    """Box error and label differences between two images' detections (``InstanceData``).

    The box error is the largest distance from a detection to its nearest one
    in the other set, both ways; inf if the counts differ. Order is not
    compared (scores equal up to rounding may swap), nor are labels: where two
    classes score within the score tolerance, either may win, and the score
    comparison already covers the classes. Label differences counts the
    detections whose nearest counterpart has another label.
    """
    if len(got) != len(expected):
        return float('inf'), 0
    if not len(got):
        return 0.0, 0
    got_distance, nearest = _nearest(got.bboxes, expected.bboxes)
    expected_distance, _ = _nearest(expected.bboxes, got.bboxes)
    box_error = max(got_distance.max().item(), expected_distance.max().item())
    return box_error, int((got.labels != expected.labels[nearest]).sum())


@dataclass
class OnnxCheck:
    """ONNX Runtime's outputs against PyTorch's, on one batch.

    Args:
        batch_size (int): Images in the batch compared.
        boxes_max_abs (float): Max absolute error of ``boxes`` (px).
        boxes_rel (float): Relative error of ``boxes`` (error norm / reference norm).
        scores_max_abs (float): Max absolute error of ``scores``.
        scores_rel (float): Relative error of ``scores``.
        onnx_detections (list[int]): Per image, detections after NMS of the ONNX outputs.
        pytorch_detections (list[int]): The same for PyTorch's outputs.
        detection_box_error (float): The largest distance (px, max over
            coordinates) from a detection to its nearest counterpart in the
            other set, both ways; inf if the counts differ.
        label_differences (int): Detections whose counterpart has another label
            (for information: runtimes may break near-ties between classes
            either way, see ``scores_max_abs``).
        box_atol (float): Tolerance of the box errors (px).
        score_atol (float): Tolerance of the score error.
    """
    batch_size: int
    boxes_max_abs: float
    boxes_rel: float
    scores_max_abs: float
    scores_rel: float
    onnx_detections: List[int]
    pytorch_detections: List[int]
    detection_box_error: float
    label_differences: int
    box_atol: float
    score_atol: float

    @property
    def detections_match(self) -> bool:
        return self.onnx_detections == self.pytorch_detections and self.detection_box_error <= self.box_atol

    @property
    def passed(self) -> bool:
        return self.boxes_max_abs <= self.box_atol and self.scores_max_abs <= self.score_atol and self.detections_match


def check_onnx_against_pytorch(onnx_path: str, module: OnnxExportWrapper, inputs: Optional[torch.Tensor] = None,
                               batch_size: int = 1, seed: int = 0, box_atol: float = 0.05,
                               score_atol: float = 1e-3) -> OnnxCheck:
    """Run the ONNX file with onnxruntime (CPU) and ``module`` with PyTorch on one batch and compare.

    Compares the dense outputs and the detections after
    :func:`~parnet_det.inference.postprocess_dense_detections` with the head's
    ``test_cfg`` (boxes kept in input pixels).

    onnxruntime's CPU kernels round differently from PyTorch's, and the
    network amplifies that as its weights dictate. Measured at batch 1:
    the demo's trained tiny detector, 5e-5 px on boxes and 7e-7 on scores;
    ParNet-XL at 640 px with its initial weights, 0.015 px and 1.5e-4. The
    default tolerances sit above those and far below what a wrong
    normalisation or channel order gives (tens of pixels). Random weights
    with calibrated norms can be chaotic enough to exceed them: PyTorch fp32
    alone is then 0.06 px off fp64; loosen the tolerances for such weights.

    Args:
        onnx_path (str): The exported file.
        module (OnnxExportWrapper): What was exported (:attr:`OnnxExport.module`).
        inputs (Tensor, optional): (B, 3, H, W) pixel batch; defaults to
            ``batch_size`` random letterboxed images.
        batch_size (int): Images when ``inputs`` is None. Defaults to 1.
        seed (int): Seed of the random images. Defaults to 0.
        box_atol (float): Box tolerance in pixels. Defaults to 0.05.
        score_atol (float): Score tolerance. Defaults to 1e-3.

    Returns:
        OnnxCheck: The errors and detection counts; ``passed`` says if they are within tolerance.
    """
    ort = _require('onnxruntime', 'checking the ONNX file')
    if inputs is None:
        inputs = module.letterboxed_inputs(batch_size, seed)
    session = ort.InferenceSession(onnx_path, providers=['CPUExecutionProvider'])
    onnx_boxes, onnx_scores = (torch.from_numpy(output) for output in session.run(
        list(OUTPUT_NAMES), {INPUT_NAME: inputs.numpy()}))
    with torch.inference_mode():
        torch_boxes, torch_scores = module(inputs)
    boxes_max_abs, boxes_rel = _errors(onnx_boxes, torch_boxes)
    scores_max_abs, scores_rel = _errors(onnx_scores, torch_scores)

    metas = [dict(scale_factor=(1.0, 1.0))] * len(inputs)  # detections stay in input pixels
    onnx_detections = postprocess_dense_detections(onnx_boxes, onnx_scores, metas, module.test_cfg)
    torch_detections = postprocess_dense_detections(torch_boxes, torch_scores, metas, module.test_cfg)
    box_errors, label_differences = zip(*map(_compare_detections, onnx_detections, torch_detections))
    return OnnxCheck(
        batch_size=len(inputs), boxes_max_abs=boxes_max_abs, boxes_rel=boxes_rel, scores_max_abs=scores_max_abs,
        scores_rel=scores_rel, onnx_detections=[len(d) for d in onnx_detections],
        pytorch_detections=[len(d) for d in torch_detections], detection_box_error=max(box_errors),
        label_differences=sum(label_differences), box_atol=box_atol, score_atol=score_atol)
