"""The training loss of YOLOv4-CSP as Scaled-YOLOv4 trains it (box CIoU, IoU-valued objectness, class BCE)."""
import math
from typing import Dict, List, Sequence, Tuple

import torch
import torch.nn as nn
from mmengine.dist import get_world_size
from mmengine.structures import InstanceData

from mmdet.registry import MODELS, TASK_UTILS
from mmdet.structures.bbox import bbox_cxcywh_to_xyxy, bbox_overlaps


def complete_iou(pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-9) -> torch.Tensor:
    """CIoU of aligned xyxy boxes (Zheng et al., 2020), as Scaled-YOLOv4 computes it::

        CIoU = IoU - rho^2 / c^2 - alpha v,   v = 4 / pi^2 (atan(w_t / h_t) - atan(w_p / h_p))^2,
        alpha = v / (1 - IoU + v)  (no gradient),

    rho the distance of the centres, c the diagonal of the enclosing box. mmdet's ``ciou_loss``
    differs: it drops ``alpha v`` where IoU <= 0.5 and clamps to [-1, 1]; the recipe keeps both,
    and its objectness target is this value, so it is written here.
    """
    iou = bbox_overlaps(pred, target, mode='iou', is_aligned=True, eps=eps)
    enclose = torch.max(pred[:, 2:], target[:, 2:]) - torch.min(pred[:, :2], target[:, :2])
    diagonal2 = enclose.pow(2).sum(dim=1) + eps
    centre_distance2 = ((pred[:, :2] + pred[:, 2:] - target[:, :2] - target[:, 2:]) / 2).pow(2).sum(dim=1)
    pred_wh, target_wh = pred[:, 2:] - pred[:, :2], target[:, 2:] - target[:, :2]
    v = (4 / math.pi**2) * (torch.atan(target_wh[:, 0] / (target_wh[:, 1] + eps)) -
                            torch.atan(pred_wh[:, 0] / (pred_wh[:, 1] + eps))).pow(2)
    with torch.no_grad():
        alpha = v / (v - iou + 1 + eps)
    return iou - centre_distance2 / diagonal2 - alpha * v


@MODELS.register_module()
class YOLOv4CSPLoss(nn.Module):
    """Scaled-YOLOv4's loss on the raw prediction maps of a YOLOv4-CSP head.

    ``pred_maps[l]`` is ``[B, A (5 + C), H_l, W_l]``, channel ``a (5 + C) + k`` with
    ``k = x, y, w, h, obj, cls_0 ..``. Positives come from :class:`AnchorRatioAssigner`
    (``anchor_t``, neighbour cells). Per level, for the ``n_l`` positives, ``s`` the sigmoid:

    1. box:   ``p_xy = 2 s_xy - 0.5``, ``p_wh = (2 s_wh)^2 anchor`` (grid units, relative to the
       cell, as the targets); ``L_box = sum_l mean_n (1 - CIoU(p, t))``;
    2. obj:   target 0 everywhere but at the positives, ``max(CIoU, 0)`` (detached; a cell claimed
       twice keeps one of its values); ``L_obj = sum_l balance_l BCE_l``, BCE mean over all
       ``B A H_l W_l`` cells, ``balance`` = 4.0 / 1.0 / 0.4 for strides 8 / 16 / 32;
    3. cls:   ``L_cls = sum_l mean_{n x C} BCE(cls logits, one-hot)`` (no smoothing; 0 if C = 1);
    4. scale: ``loss_bbox = 0.05 N L_box``, ``loss_obj = 0.7 N L_obj``,
       ``loss_cls = 0.3 (C / 80) (3 / levels) N L_cls`` with ``N`` the step's batch over all
       processes (per-GPU batch x world size; mmengine's DDP averages the gradients of the
       processes, so this is the recipe's gradient: a sum over the images of the step).

    The recipe's ``lr0 = 0.01`` is set for that sum over its batch of 64 (8 GPUs x 8): the
    gradient grows with the batch, i.e. the linear scaling rule is built in, and mmengine's
    ``auto_scale_lr`` must stay off (it would scale a second time).

    Args:
        num_classes (int): Classes ``C``.
        base_sizes (Sequence[Sequence[tuple]]): Anchors ``(w, h)`` in pixels, per level.
        strides (Sequence[int]): Strides of the levels.
        anchor_t (float): Shape ratio limit of a match. Defaults to 4.0.
        obj_level_weights (Sequence[float]): ``balance``. Defaults to (4.0, 1.0, 0.4).
        box_gain, obj_gain, cls_gain (float): The recipe's gains for 80 classes. Defaults to 0.05, 0.7, 0.3.
        scale_by_batch (bool): Multiply by ``N`` (step 4). Defaults to True.
    """

    def __init__(self,
                 num_classes: int,
                 base_sizes: Sequence[Sequence[Tuple[float, float]]],
                 strides: Sequence[int],
                 anchor_t: float = 4.0,
                 obj_level_weights: Sequence[float] = (4.0, 1.0, 0.4),
                 box_gain: float = 0.05,
                 obj_gain: float = 0.7,
                 cls_gain: float = 0.3,
                 scale_by_batch: bool = True) -> None:
        super().__init__()
        if len(obj_level_weights) != len(strides):
            raise ValueError(f'YOLOv4CSPLoss: {len(obj_level_weights)} obj_level_weights for {len(strides)} levels; '
                             'give one objectness weight per stride')
        self.num_classes = num_classes
        self.assigner = TASK_UTILS.build(
            dict(type='AnchorRatioAssigner', base_sizes=base_sizes, strides=strides, anchor_t=anchor_t))
        self.obj_level_weights = list(obj_level_weights)
        self.box_gain, self.obj_gain = box_gain, obj_gain
        self.cls_gain = cls_gain * (num_classes / 80) * (3 / len(strides))
        self.scale_by_batch = scale_by_batch
        self.bce = MODELS.build(dict(type='CrossEntropyLoss', use_sigmoid=True, reduction='mean'))

    def forward(self, pred_maps: Sequence[torch.Tensor], batch_gt_instances: List[InstanceData],
                batch_img_metas: List[dict]) -> Dict[str, torch.Tensor]:
        num_attrs = 5 + self.num_classes
        preds = []  # [B, A, H, W, 5 + C] per level
        for pred in pred_maps:
            batch, channels, height, width = pred.shape
            preds.append(pred.view(batch, channels // num_attrs, num_attrs, height, width).permute(0, 1, 3, 4, 2))
        targets = self.assigner.assign([p.shape[2:4] for p in preds], batch_gt_instances)
        loss_box = loss_obj = loss_cls = preds[0].sum() * 0  # keeps every map in the graph without positives
        for pred, level, anchors, weight in zip(preds, targets, self.assigner.anchors, self.obj_level_weights):
            obj_target = torch.zeros_like(pred[..., 4])
            if len(level.labels):
                pos = pred[level.img_inds, level.anchor_inds, level.cell_y, level.cell_x]
                xy = pos[:, :2].sigmoid() * 2 - 0.5
                wh = (pos[:, 2:4].sigmoid() * 2).pow(2) * anchors.to(pos.device)[level.anchor_inds]
                ciou = complete_iou(bbox_cxcywh_to_xyxy(torch.cat([xy, wh], dim=1)), bbox_cxcywh_to_xyxy(level.boxes))
                loss_box = loss_box + (1 - ciou).mean()
                obj_target[level.img_inds, level.anchor_inds, level.cell_y, level.cell_x] = \
                    ciou.detach().clamp(min=0).to(obj_target.dtype)
                if self.num_classes > 1:
                    one_hot = nn.functional.one_hot(level.labels, self.num_classes).to(pos.dtype)
                    loss_cls = loss_cls + self.bce(pos[:, 5:], one_hot)
            loss_obj = loss_obj + weight * self.bce(pred[..., 4], obj_target)
        scale = len(batch_img_metas) * get_world_size() if self.scale_by_batch else 1
        return dict(loss_bbox=self.box_gain * scale * loss_box, loss_obj=self.obj_gain * scale * loss_obj,
                    loss_cls=self.cls_gain * scale * loss_cls)
