"""The head of YOLOv4-CSP: per level a 3x3 ConvModule and a 1x1 prediction conv, the official decode and test."""
import math
from typing import List, Sequence, Tuple

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule
from mmcv.ops import batched_nms
from mmengine.config import ConfigDict
from mmengine.structures import InstanceData
from torch import Tensor

from mmdet.models.dense_heads.base_dense_head import BaseDenseHead
from mmdet.registry import MODELS, TASK_UTILS
from mmdet.structures.bbox import bbox_cxcywh_to_xyxy
from mmdet.utils import ConfigType, InstanceList, OptConfigType, OptInstanceList, OptMultiConfig

from ..layers.csp_layers import YOLOV4_CSP_BN
from ..layers.implicit_conv import ImplicitPredictionConv
from ..utils.widths import make_divisible

# yolov4-csp.cfg's anchors, (w, h) in pixels, three per level (strides 8, 16, 32).
YOLOV4_CSP_ANCHORS = [[(12, 16), (19, 36), (40, 28)], [(36, 75), (76, 55), (72, 146)],
                      [(142, 110), (192, 243), (459, 401)]]
# The official COCO test (Scaled-YOLOv4's test.py): objectness and score thresholds 0.001, multi-label,
# per-class NMS at IoU 0.65, at most 300 detections, no pre-NMS top-k.
YOLOV4_CSP_TEST_CFG = dict(conf_thr=0.001, score_thr=0.001, nms=dict(type='nms', iou_threshold=0.65),
                           max_per_img=300)


def select_detections(bboxes: Tensor, scores: Tensor, cfg: ConfigDict,
                      with_nms: bool = True) -> Tuple[Tensor, Tensor, Tensor]:
    """The official test's selection on one image's decoded boxes: multi-label candidates, per-class NMS.

    Every (box, class) with ``score > cfg.score_thr`` is a candidate; NMS
    (``cfg.nms``, per class) runs on the boxes as decoded, NOT clipped: Scaled-YOLOv4's
    ``test.py`` clips only after NMS, and a clip first changes which boxes suppress
    which (two boxes hanging over the border by different amounts overlap more once
    clipped); then the ``cfg.max_per_img`` best.

    Args:
        bboxes (Tensor): (N, 4) x1, y1, x2, y2 in network-input pixels.
        scores (Tensor): (N, C) objectness x class probability.
        cfg (ConfigDict): ``score_thr``, ``nms``, ``max_per_img``.
        with_nms (bool): Without NMS, every candidate is returned. Defaults to True.

    Returns:
        tuple[Tensor, Tensor, Tensor]: Boxes (n, 4), scores (n,), labels (n,), best first after NMS.
    """
    box_index, labels = (scores > cfg.score_thr).nonzero(as_tuple=True)
    bboxes, scores = bboxes[box_index], scores[box_index, labels]
    if with_nms and bboxes.numel() > 0:
        # Moved to start at 0 (IoU does not change): mmcv's batched_nms separates the classes by offsets of
        # (max coordinate + 1), which let classes overlap once unclipped boxes reach below -1.
        _, keep = batched_nms(bboxes - bboxes.min(), scores, labels, cfg.nms)
        keep = keep[:cfg.max_per_img]
        bboxes, scores, labels = bboxes[keep], scores[keep], labels[keep]
    return bboxes, scores, labels


# How boxes leave the letterbox (test_cfg.unletterbox): 'placed' undoes the placement (the integer offset the
# image was put at, each axis by its own scale); 'official' is Scaled-YOLOv4's scale_coords.
UNLETTERBOX_MODES = ('placed', 'official')


def boxes_to_image(bboxes: Tensor, img_meta: dict, rescale: bool, unletterbox: str = 'placed') -> Tensor:
    """Network-input boxes -> the image's, in the official test's order (``clip_coords``, ``scale_coords``)::

        b = clip(b, padded input)
        'placed':   b = b - (left, top);   with rescale: b = clip(b / (scale_w, scale_h), ori_shape)
        'official': b = b - (dw, dh);      with rescale: b = clip(b / scale_h, ori_shape)
                    dw = (left + right) / 2, dh = (top + bottom) / 2 (floats)

    ``'official'`` is Scaled-YOLOv4's ``scale_coords``: the float half padding (42.5 where the
    padding is odd, while the image was placed at 42) and the height's gain for both axes
    (``w / w0`` differs from it after the ``int()`` of the resize); 0.5 letterboxed pixel from
    ``'placed'`` wherever the padding is odd (640 x 427 -> 704 x 512).
    ``img_meta``: ``img_shape`` (the padded input), ``pad_param`` (top, bottom, left,
    right) where the pipeline letterboxed centred (:class:`RectLetterbox`),
    ``scale_factor`` (w, h) and ``ori_shape``. Without ``rescale`` the boxes stay
    in the resized image's pixels.
    """
    if unletterbox not in UNLETTERBOX_MODES:
        raise ValueError(f'test_cfg.unletterbox must be one of {UNLETTERBOX_MODES}, got {unletterbox!r}')
    height, width = img_meta['img_shape'][:2]
    bboxes = clip_to(bboxes, height, width)
    scale_w, scale_h = img_meta['scale_factor'] if rescale else (1.0, 1.0)
    if 'pad_param' in img_meta:
        top, bottom, left, right = (float(pad) for pad in img_meta['pad_param'])
        if unletterbox == 'official':
            top, left, scale_w = (top + bottom) / 2, (left + right) / 2, scale_h
        bboxes = bboxes - bboxes.new_tensor([left, top, left, top])
    if rescale:
        bboxes = bboxes / bboxes.new_tensor([scale_w, scale_h, scale_w, scale_h])
        bboxes = clip_to(bboxes, *img_meta['ori_shape'][:2])
    return bboxes


def clip_to(bboxes: Tensor, height: float, width: float) -> Tensor:
    """x1, y1, x2, y2 clamped to [0, width] x [0, height] (a new tensor)."""
    return torch.stack((bboxes[:, 0].clamp(0, width), bboxes[:, 1].clamp(0, height),
                        bboxes[:, 2].clamp(0, width), bboxes[:, 3].clamp(0, height)), dim=1)


@MODELS.register_module()
class YOLOv4CSPHead(BaseDenseHead):
    """YOLOv4-CSP's head (``yolov4-csp.cfg`` layers 142-143, 157-158, 172-173).

    Per level ``l`` (strides 8/16/32)::

        pred_map_l = Conv1x1 with bias (f_l -> A (5 + C))(ConvModule 3x3 (c_l -> f_l)(P_l))

    with ``A = 3`` anchors, channel ``a (5 + C) + k`` for ``k`` = x, y, w, h,
    objectness, class 0..C-1. Decoding (the official one, darknet's
    ``new_coords=1, scale_x_y=2``; ``s`` = sigmoid, ``g`` the cell, ``S`` the stride)::

        cx = (2 s(t_x) - 0.5 + g_x) S      w = (2 s(t_w))^2 anchor_w      obj = s(t_obj)
        cy = (2 s(t_y) - 0.5 + g_y) S      h = (2 s(t_h))^2 anchor_h      p_k = s(t_k)  (no softmax)

    computed from mmdet's ``YOLOAnchorGenerator`` priors (centre ``(g + 0.5) S``:
    ``cx = prior_cx + (2 s(t_x) - 1) S``). Inference (``test_cfg``, the official COCO test):
    candidates with ``obj > conf_thr``; score = obj x p_k; every (box, class)
    with ``score > score_thr`` is a candidate (multi-label); per-class NMS on
    the unclipped boxes; the ``max_per_img`` best (:func:`select_detections`);
    then clipped to the network input, the letterbox offset (``pad_param`` = top,
    bottom, left, right, if the pipeline recorded one) removed and, with
    ``rescale``, scaled and clipped to the original image (:func:`boxes_to_image`).

    Args:
        num_classes (int): Number of classes ``C``.
        in_channels (Sequence[int]): Input widths ``c_l``. Defaults to (128, 256, 512), the neck's.
        feat_channels (Sequence[int]): Widths ``f_l`` of the 3x3 convs. Defaults to (256, 512, 1024).
        widen_factor (float): Multiplier of both widths (rounded up to a multiple of 8). Defaults to 1.0.
        prior_generator (dict): Anchors. Defaults to ``YOLOAnchorGenerator`` with the cfg's anchors.
        norm_cfg (dict): Norm of the 3x3 convs. Defaults to ``dict(type='BN', momentum=0.03, eps=1e-4)``.
        act_cfg (dict): Their activation. Defaults to ``dict(type='Mish')``.
        implicit (bool): YOLOR's implicit head: ImplicitA before and ImplicitM after each
            prediction conv (:class:`~parnet_det.models.layers.ImplicitPredictionConv`; they fold
            into the conv for deploy). Defaults to False.
        deploy (bool): With ``implicit``, build the folded prediction convs. Defaults to False.
        loss (dict, optional): The loss module, built with ``num_classes``,
            ``base_sizes`` (anchors per level, pixels) and ``strides`` added;
            called as ``loss(pred_maps, batch_gt_instances, batch_img_metas)``.
            Without it the head predicts only. Defaults to None.
        train_cfg (dict, optional): Unused (the loss module holds its settings). Defaults to None.
        test_cfg (dict, optional): ``conf_thr``, ``score_thr``, ``nms``,
            ``max_per_img`` and ``unletterbox`` (:func:`boxes_to_image`; ``'placed'`` if
            not given). Defaults to the official COCO test's, with ``'placed'``.
        init_cfg (dict or list[dict], optional): Initialization config.
            Defaults to Kaiming uniform (``a=sqrt(5)``) for Conv2d; then the
            prediction biases get the official priors (:meth:`init_weights`).
    """

    def __init__(self,
                 num_classes: int,
                 in_channels: Sequence[int] = (128, 256, 512),
                 feat_channels: Sequence[int] = (256, 512, 1024),
                 widen_factor: float = 1.0,
                 prior_generator: ConfigType = dict(
                     type='YOLOAnchorGenerator', base_sizes=YOLOV4_CSP_ANCHORS, strides=(8, 16, 32)),
                 norm_cfg: ConfigType = YOLOV4_CSP_BN,
                 act_cfg: ConfigType = dict(type='Mish'),
                 implicit: bool = False,
                 deploy: bool = False,
                 loss: OptConfigType = None,
                 train_cfg: OptConfigType = None,
                 test_cfg: OptConfigType = YOLOV4_CSP_TEST_CFG,
                 init_cfg: OptMultiConfig = dict(
                     type='Kaiming', layer='Conv2d', a=math.sqrt(5), distribution='uniform',
                     mode='fan_in', nonlinearity='leaky_relu')) -> None:
        super().__init__(init_cfg=init_cfg)
        if len(in_channels) != len(feat_channels):
            raise ValueError(f'YOLOv4CSPHead: {len(in_channels)} in_channels but {len(feat_channels)} '
                             'feat_channels; give one width per level')
        self.num_classes = num_classes
        self.prior_generator = TASK_UTILS.build(prior_generator)
        self.strides = [stride[0] for stride in self.prior_generator.strides]
        self.num_levels = len(self.strides)
        if self.num_levels != len(in_channels):
            raise ValueError(f'YOLOv4CSPHead: {len(in_channels)} in_channels but {self.num_levels} '
                             'anchor levels in prior_generator')
        self.num_anchors = self.prior_generator.num_base_priors[0]
        self.num_attrib = 5 + num_classes
        self.train_cfg = train_cfg
        self.test_cfg = ConfigDict(test_cfg) if test_cfg is not None else None
        self.in_channels = [make_divisible(c * widen_factor) for c in in_channels]
        self.feat_channels = [make_divisible(c * widen_factor) for c in feat_channels]
        self.convs_bridge = nn.ModuleList(
            ConvModule(c, f, 3, padding=1, norm_cfg=norm_cfg, act_cfg=act_cfg)
            for c, f in zip(self.in_channels, self.feat_channels))
        num_outputs = self.num_anchors * self.num_attrib
        self.convs_pred = nn.ModuleList(
            ImplicitPredictionConv(f, num_outputs, deploy=deploy) if implicit else nn.Conv2d(f, num_outputs, 1)
            for f in self.feat_channels)
        self.loss_module = None
        if loss is not None:
            self.loss_module = MODELS.build(dict(
                loss, num_classes=num_classes, base_sizes=self.prior_generator.base_sizes, strides=self.strides))

    def init_weights(self) -> None:
        """The configured init, then the official priors on the prediction biases (at a 640 input):
        objectness ``+= log(8 / (640 / S)^2)``, classes ``+= log(0.6 / (C - 0.99))``. Once: mmengine
        initialises a module only once, and the priors must not add up."""
        if self.is_init:
            return
        super().init_weights()
        for conv, stride in zip(self.convs_pred, self.strides):
            bias = conv.bias.data.view(self.num_anchors, self.num_attrib)
            bias[:, 4] += math.log(8 / (640 / stride)**2)
            bias[:, 5:] += math.log(0.6 / (self.num_classes - 0.99))

    def forward(self, x: Tuple[Tensor, ...]) -> Tuple[List[Tensor]]:
        """Raw prediction maps, per level ``(B, A (5 + C), H_l, W_l)``, in a 1-tuple (as mmdet's YOLOV3Head)."""
        if len(x) != self.num_levels:
            raise ValueError(f'YOLOv4CSPHead: {len(x)} feature maps for {self.num_levels} levels')
        return [pred(bridge(feat)) for feat, bridge, pred in zip(x, self.convs_bridge, self.convs_pred)],

    def decode(self, pred_maps: Sequence[Tensor]) -> Tensor:
        """Decoded predictions before any threshold, as the official network outputs them.

        Returns:
            Tensor: ``(B, N, 5 + C)``: cx, cy, w, h in network-input pixels,
            objectness, class probabilities; N = sum of ``A H_l W_l``, ordered
            by level, then anchor, row, column.
        """
        priors = self.prior_generator.grid_priors(
            [pred.shape[2:] for pred in pred_maps], dtype=pred_maps[0].dtype, device=pred_maps[0].device)
        decoded = []
        for pred, level_priors, stride in zip(pred_maps, priors, self.strides):
            batch, _, height, width = pred.shape
            # (B, A(5+C), H, W) -> (B, A, H, W, 5+C); priors (H W A, 4) -> (A, H, W, 4).
            pred = pred.view(batch, self.num_anchors, self.num_attrib, height, width).permute(0, 1, 3, 4, 2)
            level_priors = level_priors.view(height, width, self.num_anchors, 4).permute(2, 0, 1, 3)
            prior_centres = (level_priors[..., :2] + level_priors[..., 2:]) / 2
            prior_sizes = level_priors[..., 2:] - level_priors[..., :2]
            probs = pred.sigmoid()
            centres = prior_centres + (2 * probs[..., :2] - 1) * stride
            sizes = (2 * probs[..., 2:4])**2 * prior_sizes
            decoded.append(torch.cat((centres, sizes, probs[..., 4:]), dim=-1).reshape(batch, -1, self.num_attrib))
        return torch.cat(decoded, dim=1)

    def boxes_and_scores(self, pred_maps: Sequence[Tensor]) -> Tuple[Tensor, Tensor]:
        """Decoded boxes ``(B, N, 4)`` (x1, y1, x2, y2, network-input pixels) and scores ``(B, N, C)``
        (objectness x class probability): what the thresholds and NMS of the test work on (ONNX export)."""
        decoded = self.decode(pred_maps)
        return bbox_cxcywh_to_xyxy(decoded[..., :4]), decoded[..., 5:] * decoded[..., 4:5]

    def predict_by_feat(self,
                        pred_maps: Sequence[Tensor],
                        batch_img_metas: List[dict],
                        cfg: OptConfigType = None,
                        rescale: bool = False,
                        with_nms: bool = True) -> InstanceList:
        """Detections per image (``bboxes`` x1, y1, x2, y2; ``scores``; ``labels``), as the official COCO test."""
        cfg = self.test_cfg if cfg is None else cfg
        decoded = self.decode(pred_maps)
        return [self._predict_single(predictions, img_meta, cfg, rescale, with_nms)
                for predictions, img_meta in zip(decoded, batch_img_metas)]

    def _predict_single(self, predictions: Tensor, img_meta: dict, cfg: ConfigDict, rescale: bool,
                        with_nms: bool) -> InstanceData:
        predictions = predictions[predictions[:, 4] > cfg.conf_thr]
        bboxes, scores, labels = select_detections(
            bbox_cxcywh_to_xyxy(predictions[:, :4]), predictions[:, 5:] * predictions[:, 4:5], cfg, with_nms)
        results = InstanceData()
        results.bboxes = boxes_to_image(bboxes, img_meta, rescale, cfg.get('unletterbox', 'placed'))
        results.scores, results.labels = scores, labels
        return results

    def loss_by_feat(self,
                     pred_maps: Sequence[Tensor],
                     batch_gt_instances: InstanceList,
                     batch_img_metas: List[dict],
                     batch_gt_instances_ignore: OptInstanceList = None) -> dict:
        """The configured loss module on the raw prediction maps (ignored instances are not used)."""
        if self.loss_module is None:
            raise ValueError('YOLOv4CSPHead has no loss: set model.bbox_head.loss=dict(type=\'YOLOv4CSPLoss\') '
                             'in the config to train it')
        return self.loss_module(pred_maps, batch_gt_instances, batch_img_metas)
