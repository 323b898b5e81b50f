"""Batched post-processing of dense detections: score threshold, rescale, one NMS call, top-k."""
from typing import List, Sequence, Tuple

import mmcv.ops
import torch
from mmengine.config import ConfigDict
from mmengine.structures import InstanceData


def _tiled_nms(boxes: torch.Tensor, scores: torch.Tensor, image_ids: torch.Tensor, labels: torch.Tensor,
               nms_cfg: ConfigDict) -> Tuple[torch.Tensor, torch.Tensor, int]:
    """One NMS call over every image and class at once: mmcv's ``nms`` (or ``soft_nms``, as ``nms_cfg.type``
    says) on boxes moved so that no two (image, class) groups overlap.

    Each group gets its own tile of the plane, images along y and classes along
    x, each tile as large as the boxes' extent. mmcv's ``batched_nms`` offsets
    along one axis by ``group * (max + 1)``: over a batch (images x 80
    classes) those offsets grow by the batch size, and float32 rounding of the
    moved coordinates with them; past ``split_thr`` boxes it falls back to one
    NMS call per group. Tiling keeps the offsets as small as mmdet's per-image
    class offsets, hence its precision, for any batch size.

    Returns:
        tuple[Tensor, Tensor, int]: Indices kept, best first; their scores
        (NMS variants such as soft-NMS rescore); the per-image limit of
        ``nms_cfg.max_num`` (-1 for none).
    """
    cfg = dict(nms_cfg)
    nms_type = cfg.pop('type', 'nms')
    class_agnostic = cfg.pop('class_agnostic', False)
    cfg.pop('split_thr', None)
    max_num = cfg.pop('max_num', -1)
    nms_op = getattr(mmcv.ops, nms_type, None) if nms_type in ('nms', 'soft_nms') else None
    if nms_op is None:
        raise ValueError(f"test_cfg.nms.type {nms_type!r} is not supported by the batched post-processing; "
                         "use 'nms' or 'soft_nms'")
    low = boxes.min()
    span = boxes.max() - low + 1
    columns = torch.zeros_like(labels) if class_agnostic else labels
    tile = torch.stack([columns, image_ids, columns, image_ids], dim=1).to(boxes)
    dets, keep = nms_op(boxes - low + tile * span, scores, **cfg)
    return keep, dets[:, -1], max_num


def postprocess_dense_detections(boxes: torch.Tensor, scores: torch.Tensor, metas: Sequence[dict],
                                 test_cfg: ConfigDict) -> List[InstanceData]:
    """YOLOX's post-processing for a whole batch, with one NMS call.

    Per box, the best class and its score; boxes under ``test_cfg.score_thr``
    are dropped; the rest are scaled back to the original image
    (``metas[i]['scale_factor']``) and go through one NMS (``test_cfg.nms``)
    for all images and classes together, no box suppressing one of another
    image or class (see :func:`_tiled_nms`). Each image keeps at most
    ``test_cfg.max_per_img`` (and ``nms.max_num``) detections if set, best
    first. This gives what mmdet's ``YOLOXHead.predict_by_feat(...,
    rescale=True)`` gives image by image.

    Args:
        boxes (Tensor): (B, N, 4) boxes in input-batch pixels.
        scores (Tensor): (B, N, C) scores.
        metas (Sequence[dict]): Per image, ``scale_factor`` (w, h).
        test_cfg (ConfigDict): The head's ``test_cfg`` (``score_thr``, ``nms``, ``max_per_img``).

    Returns:
        list[InstanceData]: Per image, ``bboxes`` (n, 4), ``scores`` (n,) and ``labels`` (n,).
    """
    best_scores, labels = scores.max(dim=2)
    image_ids, box_ids = torch.nonzero(best_scores >= test_cfg.score_thr, as_tuple=True)
    scale = torch.tensor([meta['scale_factor'] for meta in metas], dtype=boxes.dtype, device=boxes.device)
    kept_boxes = boxes[image_ids, box_ids] / scale[image_ids].repeat(1, 2)
    kept_scores = best_scores[image_ids, box_ids]
    kept_labels = labels[image_ids, box_ids]
    max_num = -1
    if kept_boxes.numel():
        keep, kept_scores, max_num = _tiled_nms(kept_boxes, kept_scores, image_ids, kept_labels, test_cfg.nms)
        image_ids, kept_boxes, kept_labels = image_ids[keep], kept_boxes[keep], kept_labels[keep]
    # YOLOX's test_cfg has no max_per_img (its head keeps every NMS survivor); other heads' do.
    limits = [limit for limit in (test_cfg.get('max_per_img', -1), max_num) if limit > 0]
    limit = min(limits) if limits else None
    results = []
    for image in range(len(metas)):
        mine = torch.nonzero(image_ids == image, as_tuple=True)[0][:limit]
        results.append(InstanceData(bboxes=kept_boxes[mine], scores=kept_scores[mine], labels=kept_labels[mine]))
    return results
