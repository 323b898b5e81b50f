"""Batched post-processing of dense detections: score threshold, rescale, NMS, top-k."""
from typing import List, Sequence

import torch
from mmcv.ops import batched_nms
from mmengine.config import ConfigDict
from mmengine.structures import InstanceData


def postprocess_dense_detections(boxes: torch.Tensor, scores: torch.Tensor, metas: Sequence[dict],
                                 test_cfg: ConfigDict) -> List[InstanceData]:
    """YOLOX's post-processing for a whole batch, with one NMS call.

    Per box, the best class and its score; boxes under ``test_cfg.score_thr``
    are dropped; the rest are scaled back to the original image
    (``metas[i]['scale_factor']``) and go through mmcv's ``batched_nms`` with
    ``test_cfg.nms`` all together: the class indices are offset per image, so
    no box suppresses one of another image. Each image keeps at most
    ``test_cfg.max_per_img`` detections (if set), best first. This gives what mmdet's
    ``YOLOXHead.predict_by_feat(..., rescale=True)`` gives image by image.

    Args:
        boxes (Tensor): (B, N, 4) boxes in input-batch pixels.
        scores (Tensor): (B, N, C) scores.
        metas (Sequence[dict]): Per image, ``scale_factor`` (w, h).
        test_cfg (ConfigDict): The head's ``test_cfg`` (``score_thr``, ``nms``, ``max_per_img``).

    Returns:
        list[InstanceData]: Per image, ``bboxes`` (n, 4), ``scores`` (n,) and ``labels`` (n,).
    """
    batch, _, num_classes = scores.shape
    best_scores, labels = scores.max(dim=2)
    image_ids, box_ids = torch.nonzero(best_scores >= test_cfg.score_thr, as_tuple=True)
    scale = torch.tensor([meta['scale_factor'] for meta in metas], dtype=boxes.dtype, device=boxes.device)
    kept_boxes = boxes[image_ids, box_ids] / scale[image_ids].repeat(1, 2)
    kept_scores = best_scores[image_ids, box_ids]
    kept_labels = labels[image_ids, box_ids]
    if kept_boxes.numel():
        dets, keep = batched_nms(kept_boxes, kept_scores, image_ids * num_classes + kept_labels, test_cfg.nms)
        # Some NMS variants (soft-NMS) rescore: take the scores NMS returns. keep is sorted by score.
        image_ids, kept_boxes, kept_labels = image_ids[keep], kept_boxes[keep], kept_labels[keep]
        kept_scores = dets[:, -1]
    # YOLOX's test_cfg has no max_per_img (its head keeps every NMS survivor); other heads' do.
    limit = test_cfg.get('max_per_img', -1)
    limit = limit if limit > 0 else None
    results = []
    for image in range(batch):
        mine = torch.nonzero(image_ids == image, as_tuple=True)[0][:limit]
        results.append(InstanceData(bboxes=kept_boxes[mine], scores=kept_scores[mine], labels=kept_labels[mine]))
    return results
