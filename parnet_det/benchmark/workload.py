"""The same post-processing work for every model without a checkpoint.

Random heads give NMS whatever their initialisation happens to give: YOLOX's
initial scores (~1e-4) leave nothing over the score threshold, a random
backbone fed raw pixels makes logits of 1e4 (every score 0 or 1, box sizes
that overflow), and differently initialised models leave different numbers,
so end-to-end timings would compare different NMS work. A trained COCO
detector passes on the order of a thousand boxes per image to NMS and keeps
on the order of a hundred. :func:`control_yolox_workload` sets every model up
by the same method to do exactly that work on the batch that is timed.
"""
from typing import List, Optional, Tuple

import torch
import torch.nn as nn
from mmcv.ops import batched_nms

from mmdet.models.dense_heads import YOLOXHead

DEFAULT_DETECTIONS = 100
# Spread of the box offsets and log-sizes, in strides (a trained head's are of this order).
BOX_LOGIT_STD = 0.3


def _head_logits(model: nn.Module, inputs: torch.Tensor) -> Tuple[List[torch.Tensor], ...]:
    with torch.inference_mode():
        return tuple([level.float() for level in outputs] for outputs in model._forward(inputs))


def _flatten(levels: List[torch.Tensor]) -> torch.Tensor:
    """Per-level (B, C, H, W) -> (B, N, C), the priors of all levels in a row."""
    return torch.cat([level.flatten(2) for level in levels], dim=2).transpose(1, 2)


def count_candidates(model: nn.Module, inputs: torch.Tensor) -> Optional[float]:
    """Mean number of priors per image whose score passes the head's ``score_thr``: the boxes that reach
    NMS in ``YOLOXHead.predict_by_feat``; None for other heads."""
    if not isinstance(getattr(model, 'bbox_head', None), YOLOXHead):
        return None
    cls_scores, _, objectnesses = _head_logits(model, inputs)
    scores = _flatten(cls_scores).sigmoid().amax(dim=2) * _flatten(objectnesses)[..., 0].sigmoid()
    return (scores >= model.bbox_head.test_cfg.score_thr).sum().item() / len(inputs)


def _standardize(convs: List[nn.Conv2d], logits: List[torch.Tensor], std: float) -> None:
    """Scale and shift each conv so that its logits (computed with a zero bias) have mean 0 and ``std``."""
    with torch.no_grad():
        for conv, level in zip(convs, logits):
            scale = std / level.std().clamp_min(1e-12)
            conv.weight.mul_(scale)
            conv.bias.copy_(-level.mean(dim=(0, 2, 3)) * scale)


def _bisect(count, target: float, increasing: bool, low: float, high: float, steps: int) -> float:
    """The x in [low, high] where the monotonic ``count(x)`` comes nearest ``target``, to (high - low) / 2^steps.

    ``count`` may jump (many boxes cross a threshold at once): of the two ends of the last bracket, the one
    whose count is nearer the target wins.
    """
    for _ in range(steps):
        middle = (low + high) / 2
        if (count(middle) < target) == increasing:
            low = middle
        else:
            high = middle
    return min((low, high), key=lambda x: abs(count(x) - target))


def control_yolox_workload(model: nn.Module, inputs: torch.Tensor, candidates: int,
                           detections: int = DEFAULT_DETECTIONS, seed: int = 0) -> Tuple[int, int]:
    """Set a YOLOX head so that ``candidates`` boxes per image of ``inputs`` reach NMS and about
    ``detections`` survive it.

    The method, the same for every model:

    1. the classification, objectness and box convs get random weights
       (seeded with ``seed``), scaled and centred so that their outputs on
       ``inputs`` have mean 0 and standard deviation 1 (scores) or 0.3 (box
       offsets and log-sizes, in strides) at every level: scores and boxes
       vary from prior to prior as a trained head's do;
    2. one shift b of every objectness bias, found by bisection, makes the
       mean number of priors with ``max_c sigmoid(cls_c) * sigmoid(obj + b)
       >= score_thr`` equal to ``candidates`` (at most half the priors);
    3. one shift s of the box log-size biases (box side ~ e^s strides), found
       by bisection, makes the mean number of those candidates kept by the
       head's NMS (``test_cfg.nms``) about ``detections`` (bigger boxes
       overlap more, and fewer survive).

    Call it with the batch that is timed: other images give about, not
    exactly, the same counts.

    Returns:
        tuple[int, int]: The candidate target used, and the mean detections per image reached.
    """
    head = model.bbox_head
    if not isinstance(head, YOLOXHead):
        raise TypeError(f'{type(head).__name__}: the controlled workload is defined for YOLOX heads only; '
                        'benchmark with a checkpoint, or with --candidates 0')
    generator = torch.Generator().manual_seed(seed)
    convs = [head.multi_level_conv_cls, head.multi_level_conv_reg, head.multi_level_conv_obj]
    with torch.no_grad():
        for conv in (conv for level_convs in convs for conv in level_convs):
            conv.bias.zero_()
            conv.weight.copy_(torch.randn(conv.weight.shape, generator=generator))
    for level_convs, logits, std in zip(convs, _head_logits(model, inputs), (1.0, BOX_LOGIT_STD, 1.0)):
        _standardize(level_convs, logits, std)
    logits = _head_logits(model, inputs)
    priors = torch.cat(head.prior_generator.grid_priors([level.shape[2:] for level in logits[0]],
                                                         device=inputs.device, with_stride=True))
    cls_scores, bbox_preds, objectnesses = (_flatten(levels) for levels in logits)
    best_scores, labels = cls_scores.sigmoid().max(dim=2)
    objectness = objectnesses[..., 0]
    target = min(candidates, best_scores.shape[1] // 2)
    threshold = head.test_cfg.score_thr
    passes = lambda shift: best_scores * (objectness + shift).sigmoid() >= threshold
    objectness_shift = _bisect(lambda shift: passes(shift).sum().item() / len(inputs), target, increasing=True,
                               low=-30.0, high=30.0, steps=40)
    kept = passes(objectness_shift)
    scores = best_scores * (objectness + objectness_shift).sigmoid()

    def mean_detections(log_size: float) -> float:
        boxes = head._bbox_decode(priors, bbox_preds + bbox_preds.new_tensor([0, 0, log_size, log_size]))
        return sum(len(batched_nms(boxes[i][kept[i]], scores[i][kept[i]], labels[i][kept[i]], head.test_cfg.nms)[1])
                   for i in range(len(inputs))) / len(inputs)

    log_size = _bisect(mean_detections, detections, increasing=False, low=-2.0, high=6.0, steps=16)
    with torch.no_grad():
        for conv in head.multi_level_conv_obj:
            conv.bias.add_(objectness_shift)
        for conv in head.multi_level_conv_reg:
            conv.bias[2:].add_(log_size)
    return target, round(mean_detections(log_size))
