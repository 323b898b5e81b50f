"""A single-stage detector's network as one module: image batch in, dense boxes and scores out.

The fast paths (channels-last, reduced precision, ``torch.compile``, CUDA
graphs) and the ONNX export all take this one module, so that what is
compiled, captured or exported is the same computation that is timed and
tested.
"""
from typing import Dict, List, Tuple, Union

import torch
import torch.nn as nn

from mmdet.models.dense_heads import RTMDetHead, YOLOXHead
from mmdet.models.detectors import SingleStageDetector


class DenseDetectorNetwork(nn.Module):
    """Backbone, neck and head of a single-stage detector, with batched box decoding for YOLOX heads.

    With a :class:`~mmdet.models.dense_heads.YOLOXHead` (this project's
    YOLO-style detectors) the forward also decodes the whole batch at once,
    as the head's ``predict_by_feat`` does per image before NMS, and returns

    - ``boxes`` (B, N, 4): (x1, y1, x2, y2) in input-batch pixels, fp32;
    - ``scores`` (B, N, num_classes): class probability x objectness, fp32;

    where N sums H x W over the head's levels. With any other head the forward
    returns the head's raw outputs; mmdet's ``predict_by_feat`` decodes them, and
    :meth:`boxes_and_scores` gives the same dense boxes and scores (before NMS) for
    every head that can be exported: YOLOX's, a head with its own ``boxes_and_scores``
    (YOLOv4CSPHead) and RTMDet's (:meth:`decode_rtmdet`).

    The head's outputs are cast to fp32 before decoding, so a network cast to
    fp16 / bf16 still decodes in fp32.

    Args:
        detector (SingleStageDetector): A built mmdet detector, wrapped (not copied).
    """

    def __init__(self, detector: nn.Module) -> None:
        super().__init__()
        if not isinstance(detector, SingleStageDetector):
            raise TypeError(f'{type(detector).__name__} is not a single-stage detector; the inference engine '
                            'runs single-stage detectors (use mmdet.apis.inference_detector for others)')
        self.detector = detector
        self.decodes_boxes = isinstance(detector.bbox_head, YOLOXHead)
        self._priors: Dict[tuple, torch.Tensor] = {}

    @property
    def backbone(self) -> nn.Module:
        return self.detector.backbone

    @property
    def bbox_head(self) -> nn.Module:
        return self.detector.bbox_head

    def forward(self, inputs: torch.Tensor) -> Union[Tuple[torch.Tensor, torch.Tensor], tuple]:
        # mmdet's own network call, its public 'tensor' mode: backbone, neck (if any) and head, no post-processing.
        head_outputs = self.detector(inputs, mode='tensor')
        if not self.decodes_boxes:
            return head_outputs
        cls_scores, bbox_preds, objectnesses = ([level.float() for level in outputs] for outputs in head_outputs)
        return self.decode(cls_scores, bbox_preds, objectnesses)

    @property
    def exports_boxes(self) -> bool:
        """Whether :meth:`boxes_and_scores` can decode this head's outputs (and so an ONNX graph can)."""
        return (self.decodes_boxes or hasattr(self.bbox_head, 'boxes_and_scores')
                or isinstance(self.bbox_head, RTMDetHead))

    def boxes_and_scores(self, outputs) -> Tuple[torch.Tensor, torch.Tensor]:
        """The forward's ``outputs`` as dense ``boxes`` (B, N, 4, input pixels, not clipped) and ``scores``
        (B, N, num_classes), fp32, before any threshold or NMS."""
        if self.decodes_boxes:
            return outputs
        if isinstance(self.bbox_head, RTMDetHead):
            return self.decode_rtmdet(*outputs)
        if hasattr(self.bbox_head, 'boxes_and_scores'):
            return self.bbox_head.boxes_and_scores(*outputs)
        raise ValueError(f'{type(self.bbox_head).__name__}: no dense decoding outside mmdet\'s predict_by_feat '
                         '(YOLOX heads, RTMDet heads and heads with boxes_and_scores have one)')

    def decode_rtmdet(self, cls_scores: List[torch.Tensor],
                      bbox_preds: List[torch.Tensor]) -> Tuple[torch.Tensor, torch.Tensor]:
        """Decode RTMDet head outputs as ``RTMDetHead.predict_by_feat`` does before its threshold and NMS.

        RTMDet's head predicts, per point prior (x, y) (offset 0), the distances
        (l, t, r, b) to the box's sides, already in pixels (the head multiplies by the
        stride): box = (x - l, y - t, x + r, y + b), mmdet's ``DistancePointBBoxCoder``;
        scores are the sigmoid of the class logits (no objectness). mmdet clips the
        boxes to the image before NMS; here they stay unclipped, as every graph output.

        Args:
            cls_scores (list[Tensor]): Per level, (B, num_classes, H, W) logits.
            bbox_preds (list[Tensor]): Per level, (B, 4, H, W) distances in pixels.

        Returns:
            tuple[Tensor, Tensor]: ``boxes`` (B, N, 4) and ``scores`` (B, N, num_classes), fp32.
        """
        batch = cls_scores[0].shape[0]
        flat = lambda levels, width: torch.cat(
            [level.float().permute(0, 2, 3, 1).reshape(batch, -1, width) for level in levels], dim=1)
        points = self._grid_priors([level.shape[2:] for level in cls_scores], cls_scores[0].device)[:, :2]
        distances = flat(bbox_preds, 4)
        boxes = torch.cat([points - distances[..., :2], points + distances[..., 2:]], dim=-1)
        return boxes, flat(cls_scores, self.bbox_head.cls_out_channels).sigmoid()

    def _grid_priors(self, feature_sizes: List[torch.Size], device: torch.device) -> torch.Tensor:
        """(N, 4) priors (x, y, stride_w, stride_h) of all levels; cached per feature size in eager mode."""
        key = (tuple(tuple(size) for size in feature_sizes), device)
        # Traced (compile, export), the priors become part of the graph; a cache there would only add guards.
        if torch.compiler.is_compiling() or key not in self._priors:
            priors = torch.cat(self.bbox_head.prior_generator.grid_priors(
                feature_sizes, dtype=torch.float32, device=device, with_stride=True))
            if torch.compiler.is_compiling():
                return priors
            self._priors[key] = priors
        return self._priors[key]

    @staticmethod
    def decode_yolox_boxes(priors: torch.Tensor, bbox_preds: torch.Tensor) -> torch.Tensor:
        """YOLOX's box decoding: (B, N, 4) predictions (dx, dy, log w, log h) at (N, 4) priors (x, y, stride_w,
        stride_h) to (B, N, 4) boxes (x1, y1, x2, y2) in input pixels.

        Centre = prior + offset x stride, size = exp(log size) x stride. Written out, operation for operation as
        mmdet 3.3's ``YOLOXHead`` decodes (so the boxes are bit-identical), because mmdet has it only as the
        private ``_bbox_decode`` and no bbox coder for it.
        """
        xys = (bbox_preds[..., :2] * priors[:, 2:]) + priors[:, :2]
        whs = bbox_preds[..., 2:].exp() * priors[:, 2:]
        return torch.stack([xys[..., 0] - whs[..., 0] / 2, xys[..., 1] - whs[..., 1] / 2,
                            xys[..., 0] + whs[..., 0] / 2, xys[..., 1] + whs[..., 1] / 2], -1)

    def decode(self, cls_scores: List[torch.Tensor], bbox_preds: List[torch.Tensor],
               objectnesses: List[torch.Tensor]) -> Tuple[torch.Tensor, torch.Tensor]:
        """Decode YOLOX head outputs into boxes and scores, as ``YOLOXHead.predict_by_feat`` does before NMS.

        Args:
            cls_scores (list[Tensor]): Per level, (B, num_classes, H, W) logits.
            bbox_preds (list[Tensor]): Per level, (B, 4, H, W) offsets and log sizes.
            objectnesses (list[Tensor]): Per level, (B, 1, H, W) logits.

        Returns:
            tuple[Tensor, Tensor]: ``boxes`` (B, N, 4) and ``scores`` (B, N, num_classes).
        """
        batch = cls_scores[0].shape[0]
        flat = lambda levels, width: torch.cat(
            [level.permute(0, 2, 3, 1).reshape(batch, -1, width) for level in levels], dim=1)
        priors = self._grid_priors([level.shape[2:] for level in cls_scores], cls_scores[0].device)
        boxes = self.decode_yolox_boxes(priors, flat(bbox_preds, 4))
        scores = flat(cls_scores, self.bbox_head.cls_out_channels).sigmoid() * flat(objectnesses, 1).sigmoid()
        return boxes, scores
