"""Scaled-YOLOv4's target assignment: anchors matched by width/height ratio, plus neighbouring cells."""
from typing import List, NamedTuple, Sequence, Tuple

import torch
from mmengine.structures import InstanceData

from mmdet.registry import TASK_UTILS
from mmdet.structures.bbox import bbox_xyxy_to_cxcywh, get_box_tensor


class LevelTargets(NamedTuple):
    """The positives of one level: ``n`` (image, anchor, cell) triples and their targets.

    ``boxes`` are ``(x - cell_x, y - cell_y, w, h)`` in grid units of the level.
    """
    img_inds: torch.Tensor  # [n] long
    anchor_inds: torch.Tensor  # [n] long
    cell_y: torch.Tensor  # [n] long
    cell_x: torch.Tensor  # [n] long
    boxes: torch.Tensor  # [n, 4] float
    labels: torch.Tensor  # [n] long


@TASK_UTILS.register_module()
class AnchorRatioAssigner:
    """Every ground-truth box is positive for every anchor of similar shape, in its cell and up to two neighbours.

    Per level ``l`` (stride ``s``), with the GT centre ``(x, y)`` and size ``(w, h)`` and the
    anchor ``(a_w, a_h)`` in grid units (pixels / s):

    1. match:  ``r = max(w/a_w, a_w/w, h/a_h, a_h/h) < anchor_t``  (no IoU rule, no best-anchor
       rule: a box may be positive on several anchors and several levels);
    2. cells:  its own cell ``(floor(x), floor(y))``, plus the left cell if ``frac(x) < g`` and
       ``x > 1``, the right cell if ``frac(x) > 1 - g`` and ``x < W - 1``, the upper and lower
       cells likewise in ``y`` (``g`` = ``neighbour_offset`` = 0.5: normally 3 cells; a centre
       exactly on a cell centre or border keeps fewer); cell indices clamped to the grid;
    3. target: ``(x - c_x, y - c_y, w, h)`` for cell ``(c_x, c_y)``, so the centre offsets lie in
       ``(-g, 1 + g)``, the range of the head's decode ``2 sigmoid - 0.5``.

    mmdet's assigners label each prior of one image once; here one box claims many
    (anchor, cell) pairs, so the result is a list of positives per level.

    Args:
        base_sizes (Sequence[Sequence[tuple]]): Anchors ``(w, h)`` in pixels, one list per level.
        strides (Sequence[int]): Stride of each level.
        anchor_t (float): Largest shape ratio of a match. Defaults to 4.0.
        neighbour_offset (float): ``g`` above. Defaults to 0.5.
    """

    def __init__(self,
                 base_sizes: Sequence[Sequence[Tuple[float, float]]],
                 strides: Sequence[int],
                 anchor_t: float = 4.0,
                 neighbour_offset: float = 0.5) -> None:
        if len(base_sizes) != len(strides):
            raise ValueError(f'AnchorRatioAssigner: {len(base_sizes)} levels of base_sizes but {len(strides)} '
                             'strides; give one anchor list per stride')
        self.anchors = [torch.tensor(sizes, dtype=torch.float32) / stride for sizes, stride in zip(base_sizes, strides)]
        self.strides = list(strides)
        self.anchor_t = anchor_t
        self.neighbour_offset = neighbour_offset

    def assign(self, grid_sizes: Sequence[Tuple[int, int]], batch_gt_instances: Sequence[InstanceData]
               ) -> List[LevelTargets]:
        """Positives per level, for grids of ``(H_l, W_l)`` cells and each image's ``bboxes`` (xyxy, pixels)
        and ``labels``."""
        boxes = torch.cat([get_box_tensor(gt.bboxes).float() for gt in batch_gt_instances]).reshape(-1, 4)
        labels = torch.cat([gt.labels for gt in batch_gt_instances]).long()
        img_inds = torch.cat([torch.full((len(gt.labels), ), i, dtype=torch.long, device=boxes.device)
                              for i, gt in enumerate(batch_gt_instances)])
        return [
            self._assign_level(bbox_xyxy_to_cxcywh(boxes) / stride, labels, img_inds, anchors.to(boxes.device), size)
            for anchors, stride, size in zip(self.anchors, self.strides, grid_sizes)
        ]

    def _assign_level(self, cxcywh, labels, img_inds, anchors, grid_size) -> LevelTargets:
        height, width = grid_size
        ratio = cxcywh[None, :, 2:] / anchors[:, None]  # [A, N, 2]
        worst = torch.max(ratio, 1 / ratio).amax(dim=-1)
        anchor_inds, gt_inds = (worst < self.anchor_t).nonzero(as_tuple=True)
        centre = cxcywh[gt_inds, :2]
        frac = centre - centre.floor()
        g, size = self.neighbour_offset, centre.new_tensor([width, height])
        near_low = (frac < g) & (centre > 1)  # left / upper neighbour
        near_high = (frac > 1 - g) & (centre < size - 1)  # right / lower neighbour
        offsets = centre.new_tensor([[0, 0], [-1, 0], [0, -1], [1, 0], [0, 1]])
        chosen = torch.stack([torch.ones_like(near_low[:, 0]), near_low[:, 0], near_low[:, 1],
                              near_high[:, 0], near_high[:, 1]])  # [5, n]
        which, pair = chosen.nonzero(as_tuple=True)
        cells = (centre[pair].floor() + offsets[which]).clamp(min=0)
        cells = torch.min(cells, size - 1)
        boxes = torch.cat([centre[pair] - cells, cxcywh[gt_inds[pair], 2:]], dim=1)
        cells = cells.long()
        return LevelTargets(img_inds[gt_inds[pair]], anchor_inds[pair], cells[:, 1], cells[:, 0], boxes,
                            labels[gt_inds[pair]])
