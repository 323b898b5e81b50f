"""Post-processing of dense detections: YOLOX's (batched: score threshold, rescale, NMS over many images at
once, top-k) and YOLOv4-CSP's official test (multi-label, NMS, then the clip)."""
from typing import Callable, List, Sequence, Tuple

import mmcv.ops
import torch
from mmengine.config import ConfigDict
from mmengine.structures import InstanceData

from mmdet.models.dense_heads import RTMDetHead, YOLOXHead

from ..models.dense_heads import boxes_to_image, clip_to, select_detections


def _tiled_nms(boxes: torch.Tensor, scores: torch.Tensor, image_ids: torch.Tensor, labels: torch.Tensor,
               nms_op: Callable, nms_args: dict, class_agnostic: bool) -> Tuple[torch.Tensor, torch.Tensor]:
    """One NMS call over some images and all their classes: ``nms_op`` on boxes moved so that no two
    (image, class) groups overlap.

    Each group gets its own tile of the plane, images along y and classes
    along x, each tile as large as the boxes' extent. mmcv's ``batched_nms``
    offsets along one axis only (``group * (max + 1)``), so over several images
    its offsets, and the float32 rounding of the moved coordinates, would grow
    with the number of images; tiles keep them at mmdet's per-image size for up
    to as many images as classes.

    Returns:
        tuple[Tensor, Tensor]: Indices kept, best first, and their scores
        (NMS variants such as soft-NMS rescore).
    """
    low = boxes.min()
    span = boxes.max() - low + 1
    columns = torch.zeros_like(labels) if class_agnostic else labels
    rows = image_ids - image_ids.min()
    tile = torch.stack([columns, rows, columns, rows], dim=1).to(boxes)
    dets, keep = nms_op(boxes - low + tile * span, scores, **nms_args)
    return keep, dets[:, -1]


def _image_chunks(boxes_per_image: List[int], max_boxes: int) -> List[Tuple[int, int]]:
    """Consecutive images in chunks of at most ``max_boxes`` boxes (an image with more is a chunk alone)."""
    chunks, start, total = [], 0, 0
    for image, count in enumerate(boxes_per_image):
        if image > start and total + count > max_boxes:
            chunks.append((start, image))
            start, total = image, 0
        total += count
    chunks.append((start, len(boxes_per_image)))
    return chunks


def postprocess_dense_detections(boxes: torch.Tensor, scores: torch.Tensor, metas: Sequence[dict],
                                 test_cfg: ConfigDict) -> List[InstanceData]:
    """YOLOX's post-processing for a whole batch, with as few NMS calls as the box count allows.

    Per box, the best class and its score; boxes under ``test_cfg.score_thr``
    are dropped; the rest are scaled back to the original image
    (``metas[i]['scale_factor']``) and go through NMS (``test_cfg.nms``: mmcv's
    ``nms`` or ``soft_nms``) for many images and all classes in one call, no
    box suppressing one of another image or class (see :func:`_tiled_nms`).
    NMS costs grow with the square of the boxes in a call, so images are
    grouped into calls of at most ``nms.split_thr`` (default 10000, mmcv's)
    boxes: a trained detector's batch usually fits in one, the thousands of
    candidates of an untrained one go image by image, as in mmdet. The kept
    detections are the same that mmdet's ``YOLOXHead.predict_by_feat(...,
    rescale=True)`` keeps image by image. ``nms.max_num`` and
    ``test_cfg.max_per_img`` (mmdet's other dense heads read it; YOLOX
    configs do not set it) limit each image's detections, best first.

    Args:
        boxes (Tensor): (B, N, 4) boxes in input-batch pixels.
        scores (Tensor): (B, N, C) scores.
        metas (Sequence[dict]): Per image, ``scale_factor`` (w, h).
        test_cfg (ConfigDict): The head's ``test_cfg`` (``score_thr``, ``nms``, optionally ``max_per_img``).

    Returns:
        list[InstanceData]: Per image, ``bboxes`` (n, 4), ``scores`` (n,) and ``labels`` (n,).
    """
    nms_args = dict(test_cfg.nms)
    nms_type = nms_args.pop('type', 'nms')
    if nms_type not in ('nms', 'soft_nms'):
        raise ValueError(f"test_cfg.nms.type {nms_type!r} is not supported by the batched post-processing; "
                         "use 'nms' or 'soft_nms'")
    nms_op = getattr(mmcv.ops, nms_type)
    class_agnostic = nms_args.pop('class_agnostic', False)
    max_boxes = nms_args.pop('split_thr', 10000)
    limits = [limit for limit in (test_cfg.get('max_per_img', -1), nms_args.pop('max_num', -1)) if limit > 0]
    limit = min(limits) if limits else None

    batch = len(metas)
    # Queued without waiting (a blocking copy would wait for the network to finish).
    scale = torch.tensor([meta['scale_factor'] for meta in metas], dtype=boxes.dtype).to(boxes.device,
                                                                                       non_blocking=True)
    best_scores, labels = scores.max(dim=2)
    # The host waits here, once per batch (for the candidates' number), and in each NMS call below: per
    # image only when the candidates outgrow one call (see split_thr).
    image_ids, box_ids = torch.nonzero(best_scores >= test_cfg.score_thr, as_tuple=True)
    # nonzero orders by image: each image's candidates are one contiguous run.
    boxes_per_image = torch.bincount(image_ids, minlength=batch).tolist()
    candidates = (boxes[image_ids, box_ids] / scale[image_ids].repeat(1, 2), best_scores[image_ids, box_ids],
                  labels[image_ids, box_ids], image_ids)
    chunks = _image_chunks(boxes_per_image, max_boxes)
    boxes_per_chunk = [sum(boxes_per_image[first:end]) for first, end in chunks]
    results = []
    for (first, end), chunk_boxes, chunk_scores, chunk_labels, chunk_images in zip(
            chunks, *(values.split(boxes_per_chunk) for values in candidates)):
        if chunk_boxes.numel():
            keep, chunk_scores = _tiled_nms(chunk_boxes, chunk_scores, chunk_images, chunk_labels, nms_op,
                                            nms_args, class_agnostic)
            chunk_boxes, chunk_labels, chunk_images = chunk_boxes[keep], chunk_labels[keep], chunk_images[keep]
        # keep is sorted by score: a stable sort by image keeps each image's detections best first.
        order = torch.sort(chunk_images, stable=True).indices
        kept_per_image = torch.bincount(chunk_images - first, minlength=end - first).tolist()
        for image_boxes, image_scores, image_labels in zip(*(values[order].split(kept_per_image) for values in (
                chunk_boxes, chunk_scores, chunk_labels))):
            results.append(InstanceData(bboxes=image_boxes[:limit], scores=image_scores[:limit],
                                        labels=image_labels[:limit]))
    return results


def postprocess_multilabel_detections(boxes: torch.Tensor, scores: torch.Tensor, metas: Sequence[dict],
                                      test_cfg: ConfigDict) -> List[InstanceData]:
    """YOLOv4-CSP's official COCO test on decoded boxes and scores (an exported graph's outputs), per image.

    What ``YOLOv4CSPHead.predict_by_feat(..., rescale=True)`` does after its decode:
    every (box, class) scoring over ``score_thr`` (multi-label), per-class NMS on the
    unclipped boxes, the ``max_per_img`` best, then clipped to the input, the
    letterbox offset removed, rescaled and clipped to the original image
    (:func:`~parnet_det.models.dense_heads.select_detections`,
    :func:`~parnet_det.models.dense_heads.boxes_to_image`). The head's objectness
    threshold ``conf_thr`` is implied by the score threshold (score = objectness x
    class probability <= objectness), so ``conf_thr`` may not exceed ``score_thr``.

    Args:
        boxes (Tensor): (B, N, 4) x1, y1, x2, y2 in input-batch pixels.
        scores (Tensor): (B, N, C) objectness x class probability.
        metas (Sequence[dict]): Per image, ``img_shape``, ``scale_factor`` (w, h),
            ``ori_shape`` and, letterboxed centred, ``pad_param``, as
            :class:`~parnet_det.inference.BatchPreprocessor` returns them.
        test_cfg (ConfigDict): The head's ``test_cfg``.

    Returns:
        list[InstanceData]: Per image, ``bboxes`` (n, 4) in original pixels, ``scores`` (n,), ``labels`` (n,).
    """
    if test_cfg.get('conf_thr', 0) > test_cfg.score_thr:
        raise ValueError(f'test_cfg.conf_thr {test_cfg.conf_thr} exceeds score_thr {test_cfg.score_thr}: '
                         'the objectness is not among the outputs; use the head\'s predict_by_feat')
    results = []
    for image_boxes, image_scores, meta in zip(boxes.float(), scores.float(), metas):
        kept_boxes, kept_scores, labels = select_detections(image_boxes, image_scores, test_cfg)
        image_boxes = boxes_to_image(kept_boxes, meta, rescale=True, unletterbox=test_cfg.get('unletterbox', 'placed'))
        results.append(InstanceData(bboxes=image_boxes, scores=kept_scores, labels=labels))
    return results


def postprocess_mmdet_multilabel_detections(boxes: torch.Tensor, scores: torch.Tensor, metas: Sequence[dict],
                                            test_cfg: ConfigDict) -> List[InstanceData]:
    """mmdet's ``BaseDenseHead`` test (RTMDet's) on decoded boxes and scores (an exported graph's outputs).

    In mmdet's order (``_predict_by_feat_single``, ``_bbox_post_process``): every
    (box, class) scoring over ``score_thr``; boxes clipped to ``img_shape``, scaled to
    the original image; those not wider and taller than ``min_bbox_size`` (if set)
    dropped; per-class NMS; the ``max_per_img`` best. mmdet's ``nms_pre`` top-k per
    level is not applied (RTMDet's 30000 exceeds the candidates of any input up to
    ~850 px with 80 classes at the scores of a trained model).

    Args:
        boxes (Tensor): (B, N, 4) x1, y1, x2, y2 in input-batch pixels.
        scores (Tensor): (B, N, C) class probabilities.
        metas (Sequence[dict]): Per image, ``img_shape`` and ``scale_factor`` (w, h).
        test_cfg (ConfigDict): The head's ``test_cfg``.

    Returns:
        list[InstanceData]: Per image, ``bboxes`` (n, 4) in original pixels, ``scores`` (n,), ``labels`` (n,).
    """
    results = []
    min_size = test_cfg.get('min_bbox_size', -1)
    for image_boxes, image_scores, meta in zip(boxes.float(), scores.float(), metas):
        scale_w, scale_h = meta['scale_factor']
        image_boxes = clip_to(image_boxes, *meta['img_shape'][:2]) / image_boxes.new_tensor(
            [scale_w, scale_h, scale_w, scale_h])
        if min_size >= 0:
            sizes = image_boxes[:, 2:] - image_boxes[:, :2]
            large = (sizes > min_size).all(dim=1)
            image_boxes, image_scores = image_boxes[large], image_scores[large]
        kept_boxes, kept_scores, labels = select_detections(image_boxes, image_scores, test_cfg)
        results.append(InstanceData(bboxes=kept_boxes, scores=kept_scores, labels=labels))
    return results


def dense_postprocess(head) -> Callable[[torch.Tensor, torch.Tensor, Sequence[dict], ConfigDict],
                                        List[InstanceData]]:
    """The post-processing of a head's dense boxes and scores (an exported graph's outputs): YOLOX's
    best-class test for a ``YOLOXHead`` (:func:`postprocess_dense_detections`), mmdet's multi-label test for
    RTMDet's (:func:`postprocess_mmdet_multilabel_detections`), else YOLOv4-CSP's official test
    (:func:`postprocess_multilabel_detections`)."""
    if isinstance(head, RTMDetHead):
        return postprocess_mmdet_multilabel_detections
    return postprocess_dense_detections if isinstance(head, YOLOXHead) else postprocess_multilabel_detections
