"""The check of an exported ONNX file: onnxruntime against PyTorch on the same letterboxed batch."""
from dataclasses import dataclass
from typing import List, Optional, Tuple

import torch

from .onnx_export import INPUT_NAME, OUTPUT_NAMES, OnnxExportWrapper, require


def output_errors(actual: torch.Tensor, expected: torch.Tensor) -> Tuple[float, float]:
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
    detections with no counterpart of their own label as near (within 1e-3 px)
    as their nearest counterpart of any label: a multi-label head (YOLOv4-CSP's
    test) lists one box once per class, and the nearest box is then any of them.
    """
    if len(got) != len(expected):
        return float('inf'), 0
    if not len(got):
        return 0.0, 0
    got_distance, _ = _nearest(got.bboxes, expected.bboxes)
    expected_distance, _ = _nearest(expected.bboxes, got.bboxes)
    box_error = max(got_distance.max().item(), expected_distance.max().item())
    # Each label moved to its own region of the plane (float64: the offsets would cost float32 its 1e-3 px):
    # the nearest box there is the nearest of the same label.
    span = 4 * torch.cat([got.bboxes, expected.bboxes]).abs().max().double() + 1
    by_label = lambda detections: detections.bboxes.double() + detections.labels[:, None].double() * span
    same_label_distance, _ = _nearest(by_label(got), by_label(expected))
    return box_error, int((same_label_distance > got_distance + 1e-3).sum())


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

    Compares the dense outputs and the detections after the head's own
    post-processing (:meth:`OnnxExportWrapper.postprocess`, the head's ``test_cfg``;
    boxes kept in input pixels).

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
    ort = require('onnxruntime', 'checking the ONNX file')
    if inputs is None:
        inputs = module.letterboxed_inputs(batch_size, seed)
    session = ort.InferenceSession(onnx_path, providers=['CPUExecutionProvider'])
    onnx_boxes, onnx_scores = (torch.from_numpy(output) for output in session.run(
        list(OUTPUT_NAMES), {INPUT_NAME: inputs.numpy()}))
    with torch.inference_mode():
        torch_boxes, torch_scores = module(inputs)
    boxes_max_abs, boxes_rel = output_errors(onnx_boxes, torch_boxes)
    scores_max_abs, scores_rel = output_errors(onnx_scores, torch_scores)

    height, width = inputs.shape[2:]
    # Detections stay in input pixels.
    metas = [dict(scale_factor=(1.0, 1.0), img_shape=(height, width), ori_shape=(height, width))] * len(inputs)
    onnx_detections = module.postprocess(onnx_boxes, onnx_scores, metas)
    torch_detections = module.postprocess(torch_boxes, torch_scores, metas)
    box_errors, label_differences = zip(*map(_compare_detections, onnx_detections, torch_detections))
    return OnnxCheck(
        batch_size=len(inputs), boxes_max_abs=boxes_max_abs, boxes_rel=boxes_rel, scores_max_abs=scores_max_abs,
        scores_rel=scores_rel, onnx_detections=[len(d) for d in onnx_detections],
        pytorch_detections=[len(d) for d in torch_detections], detection_box_error=max(box_errors),
        label_differences=sum(label_differences), box_atol=box_atol, score_atol=score_atol)
