"""YOLOv4-CSP's training loss: the anchor/cell assignment on hand-made boxes, the CIoU, and the loss terms."""
import math

import pytest
import torch
from mmengine.structures import InstanceData

from mmdet.models.losses.iou_loss import ciou_loss
from mmdet.registry import MODELS, TASK_UTILS
from mmdet.structures.bbox import bbox_cxcywh_to_xyxy, bbox_overlaps

from parnet_det.models.losses import complete_iou

STRIDES = [8, 16, 32]
# One square anchor per level in these tests: 8, 16 and 32 px are 1 x 1 cell on each level.
ONE_ANCHOR = [[(8, 8)], [(16, 16)], [(32, 32)]]


def gt(boxes, labels=None):
    boxes = torch.as_tensor(boxes, dtype=torch.float32).reshape(-1, 4)
    labels = torch.zeros(len(boxes), dtype=torch.long) if labels is None else torch.tensor(labels)
    return InstanceData(bboxes=boxes, labels=labels)


def centred(x, y, w, h, stride=8):
    """xyxy pixels of a box with centre (x, y) and size (w, h) given in grid units of ``stride``."""
    return [(x - w / 2) * stride, (y - h / 2) * stride, (x + w / 2) * stride, (y + h / 2) * stride]


def assign(gts, base_sizes=ONE_ANCHOR, grid=(10, 10), **kwargs):
    assigner = TASK_UTILS.build(dict(type='AnchorRatioAssigner', base_sizes=base_sizes, strides=STRIDES, **kwargs))
    return assigner.assign([grid] * len(STRIDES), gts)


def cells(level):
    return sorted(zip(level.img_inds.tolist(), level.anchor_inds.tolist(), level.cell_y.tolist(),
                      level.cell_x.tolist()))


@pytest.mark.parametrize('width, matched', [(4.0, False), (3.99, True), (0.25, False), (0.2501, True)])
def test_shape_ratio_threshold_is_strict(width, matched):
    # The P3 anchor is 1 x 1 cell; the box's width ratio sits on either side of anchor_t = 4 (strict).
    level = assign([gt(centred(5.5, 5.5, width, 1.0))])[0]
    assert bool(len(level.labels)) is matched


def test_both_sides_count_in_the_shape_ratio():
    # Width fits (ratio 1), height is 4.5 anchors: no match on P3. On P4 the same box is 0.5 x 2.25 cells.
    levels = assign([gt(centred(5.5, 5.5, 1.0, 4.5))])
    assert len(levels[0].labels) == 0
    assert len(levels[1].labels) > 0


def test_neighbour_cells_inside_the_grid():
    # Centre (5.25, 3.75): own cell (5, 3), the left (4, 3) and the lower (5, 4) neighbours.
    level = assign([gt(centred(5.25, 3.75, 1, 1))])[0]
    assert cells(level) == [(0, 0, 3, 4), (0, 0, 3, 5), (0, 0, 4, 5)]
    # Centre offsets relative to each cell lie in (-0.5, 1.5); size stays in grid units.
    by_cell = {(y, x): box.tolist() for y, x, box in zip(level.cell_y.tolist(), level.cell_x.tolist(), level.boxes)}
    assert by_cell == {(3, 5): [0.25, 0.75, 1, 1], (3, 4): [1.25, 0.75, 1, 1], (4, 5): [0.25, -0.25, 1, 1]}


def test_centre_at_a_cell_centre_keeps_its_own_cell_only():
    level = assign([gt(centred(5.5, 3.5, 1, 1))])[0]
    assert cells(level) == [(0, 0, 3, 5)]


def test_centre_on_a_cell_border_takes_the_lower_side_only():
    # frac 0: the left/upper neighbour (target offset 1.0, reachable), not the right/lower one (offset -1.0).
    level = assign([gt(centred(5.0, 3.0, 1, 1))])[0]
    assert cells(level) == [(0, 0, 2, 5), (0, 0, 3, 4), (0, 0, 3, 5)]


@pytest.mark.parametrize('x, expected_columns', [
    (0.25, [0]),  # frac < 0.5 but x <= 1: no left neighbour
    (1.0, [1]),  # x = 1 is not > 1
    (1.25, [0, 1]),
    (8.75, [8, 9]),  # x < W - 1 = 9: right neighbour
    (9.75, [9]),  # last column: none
    (9.0, [8, 9]),
])
def test_neighbour_cells_at_the_grid_edges(x, expected_columns):
    level = assign([gt(centred(x, 5.5, 1, 1))])[0]
    assert sorted(level.cell_x.tolist()) == expected_columns


def test_cells_are_clamped_to_the_grid():
    # A box reaching past the right edge: centre x = 10 = W lies outside the last column.
    level = assign([gt(centred(10.0, 5.5, 1, 1))])[0]
    assert level.cell_x.tolist() == [9, 9]  # own cell clamped, the left neighbour (x > 1, frac 0) too
    assert sorted(level.boxes[:, 0].tolist()) == [1.0, 1.0]


def test_one_box_on_several_anchors_and_levels():
    # A 24 x 24 px box; P3 anchors 8 (ratio 3, match), 40 (ratio 1.67, match), 100 (ratio 4.17, no);
    # P4 anchor 16 (ratio 1.5); P5 anchor 100 (ratio 4.17, no).
    base_sizes = [[(8, 8), (40, 40), (100, 100)], [(16, 16)], [(100, 100)]]
    box = [100, 100, 124, 124]  # centre 112 px: P3 14.0, P4 7.0 (cell borders)
    levels = assign([gt(box)], base_sizes=base_sizes, grid=(20, 20))
    assert sorted(set(levels[0].anchor_inds.tolist())) == [0, 1]
    assert len(levels[0].labels) == 2 * 3  # 2 anchors x (own, left, upper) cells
    assert levels[1].anchor_inds.tolist() == [0, 0, 0]
    assert len(levels[2].labels) == 0


def test_images_and_labels_are_kept_apart():
    levels = assign([gt(centred(5.5, 5.5, 1, 1), [3]), gt(torch.zeros(0, 4)), gt(centred(2.5, 7.5, 1, 1), [1])])
    assert cells(levels[0]) == [(0, 0, 5, 5), (2, 0, 7, 2)]
    assert sorted(levels[0].labels.tolist()) == [1, 3]


# --- CIoU ---

def test_ciou_equals_mmdet_ciou_loss_where_iou_is_above_one_half():
    pred = torch.tensor([[0., 0., 10., 10.], [2., 3., 12., 9.], [0., 0., 4., 8.]])
    target = torch.tensor([[1., 1., 10., 11.], [1., 3., 11., 10.], [0., 1., 4., 8.]])
    assert (bbox_overlaps(pred, target, is_aligned=True) > 0.5).all()
    torch.testing.assert_close(1 - complete_iou(pred, target), ciou_loss(pred, target, reduction='none'),
                               rtol=0, atol=1e-6)


def test_ciou_by_hand_below_one_half_where_mmdet_drops_the_aspect_term():
    pred = torch.tensor([[0., 0., 2., 2.], [0., 0., 2., 1.], [0., 0., 1., 1.]])
    target = torch.tensor([[1., 0., 3., 2.], [0., 0., 1., 2.], [3., 0., 4., 1.]])
    v = 4 / math.pi**2 * (math.atan(1 / 2) - math.atan(2))**2
    alpha = v / (1 - 1 / 3 + v)
    # IoU 1/3, centres 1 apart, enclosing 3 x 2; IoU 1/3, centres 0.5^0.5 apart, enclosing 2 x 2,
    # aspect 1:2 vs 2:1; disjoint: IoU 0, centres 3 apart, enclosing 4 x 1.
    expected = torch.tensor([1 / 3 - 1 / 13, 1 / 3 - 0.5 / 8 - alpha * v, -9 / 17])
    torch.testing.assert_close(complete_iou(pred, target), expected, rtol=0, atol=1e-6)
    mmdet = 1 - ciou_loss(pred, target, reduction='none')
    torch.testing.assert_close(mmdet[1], expected[1] + alpha * v, rtol=0, atol=1e-6)


# --- the loss ---

ANCHORS = [[(12, 16), (19, 36), (40, 28)], [(36, 75), (76, 55), (72, 146)], [(142, 110), (192, 243), (459, 401)]]
SIZE = 128  # input pixels: grids 16, 8, 4


def build_loss(num_classes=3, **kwargs):
    return MODELS.build(dict(type='YOLOv4CSPLoss', num_classes=num_classes, base_sizes=ANCHORS, strides=STRIDES,
                             **kwargs))


def zero_maps(batch, num_classes=3):
    return [torch.zeros(batch, 3 * (5 + num_classes), SIZE // s, SIZE // s, requires_grad=True) for s in STRIDES]


def as_5d(pred_map, num_classes=3):
    batch, _, height, width = pred_map.shape
    return pred_map.view(batch, 3, 5 + num_classes, height, width)


def metas(batch):
    return [dict(batch_input_shape=(SIZE, SIZE))] * batch


# Two boxes far apart (no shared cell), each positive on every level.
GTS = [gt([[10., 14., 50., 52.], [70., 60., 118., 102.]], [2, 0])]


def test_a_perfect_prediction_has_zero_loss():
    loss = build_loss()
    maps = []
    for level, stride in zip(loss.assigner.assign([(SIZE // s, SIZE // s) for s in STRIDES], GTS), range(3)):
        assert len(level.labels), 'every level has positives'
        pred = torch.full((1, 3, 8, SIZE // STRIDES[stride], SIZE // STRIDES[stride]), -30.)
        anchors = loss.assigner.anchors[stride][level.anchor_inds]
        at = (level.img_inds, level.anchor_inds, slice(None), level.cell_y, level.cell_x)
        pos = torch.full((len(level.labels), 8), -30.)
        pos[:, :2] = torch.logit((level.boxes[:, :2] + 0.5) / 2)  # decode 2 s - 0.5
        pos[:, 2:4] = torch.logit((level.boxes[:, 2:] / anchors).sqrt() / 2)  # decode (2 s)^2 anchor
        pos[:, 4] = 30.  # objectness target CIoU = 1
        pos[torch.arange(len(pos)), 5 + level.labels] = 30.
        pred[at] = pos
        maps.append(pred.view(1, -1, *pred.shape[-2:]))
    losses = loss(maps, GTS, metas(1))
    for name in ('loss_bbox', 'loss_obj', 'loss_cls'):
        assert losses[name].item() == pytest.approx(0, abs=1e-5), name
    maps[1] = maps[1].clone()
    maps[1][0, 0] += 0.5  # every x of anchor 0 on P4: boxes move
    assert build_loss()(maps, GTS, metas(1))['loss_bbox'] > 1e-3


def test_objectness_target_is_the_clamped_ciou_of_each_positive():
    # Objectness logits 0: the gradient of the mean BCE at a cell is weight / count * (1/2 - target),
    # so it reveals every cell's target. Boxes: anchors 0 and 1 predict the cell centre with the
    # anchor's size (logits 0), anchor 2 a tiny box at the cell's corner (CIoU < 0, clamped to 0).
    loss = build_loss(scale_by_batch=False)
    maps = zero_maps(1)
    for pred_map in maps:
        as_5d(pred_map).data[:, 2, :4] = torch.tensor([-10., -10., -3., -3.])[:, None, None]
    loss(maps, GTS, metas(1))['loss_obj'].backward()
    signs = set()
    for level, pred_map, anchors, weight in zip(loss.assigner.assign([m.shape[2:] for m in maps], GTS), maps,
                                                loss.assigner.anchors, (4.0, 1.0, 0.4)):
        grad = as_5d(pred_map.grad)[:, :, 4]
        target = 0.5 - grad / (0.7 * weight / grad.numel())
        logits = as_5d(pred_map).detach()[level.img_inds, level.anchor_inds, :4, level.cell_y, level.cell_x]
        pred_boxes = torch.cat([logits[:, :2].sigmoid() * 2 - 0.5,
                                (logits[:, 2:].sigmoid() * 2)**2 * anchors[level.anchor_inds]], dim=1)
        ciou = complete_iou(bbox_cxcywh_to_xyxy(pred_boxes), bbox_cxcywh_to_xyxy(level.boxes))
        signs |= set(ciou.sign().tolist())
        expected = torch.zeros_like(target)
        expected[level.img_inds, level.anchor_inds, level.cell_y, level.cell_x] = ciou.clamp(min=0)
        torch.testing.assert_close(target, expected, rtol=0, atol=1e-5)
    assert signs == {-1., 1.}


def test_no_boxes_objectness_by_hand_and_the_batch_scaling():
    # Zero logits, no boxes: BCE = log 2 at every cell, summed over levels with 4.0 / 1.0 / 0.4, gain 0.7, x batch 2.
    maps = zero_maps(2)
    losses = build_loss()(maps, [gt(torch.zeros(0, 4)), gt(torch.zeros(0, 4))], metas(2))
    assert losses['loss_obj'].item() == pytest.approx(0.7 * 2 * 5.4 * math.log(2), rel=1e-6)
    assert losses['loss_bbox'].item() == 0 and losses['loss_cls'].item() == 0
    sum(losses.values()).backward()  # every map stays in the graph
    assert all(m.grad is not None for m in maps)


def test_classes_by_hand_with_the_class_gain():
    # Zero class logits: BCE = log 2 per (positive, class); both boxes are positive on 3 levels.
    for num_classes in (3, 8):
        losses = build_loss(num_classes)(zero_maps(1, num_classes), GTS, metas(1))
        assert losses['loss_cls'].item() == pytest.approx(0.3 * num_classes / 80 * 3 * math.log(2), rel=1e-6)
    assert build_loss(1)(zero_maps(1, 1), [gt([[10., 14., 50., 52.]])], metas(1))['loss_cls'].item() == 0


def test_the_loss_is_a_sum_over_the_batch():
    one = build_loss()(zero_maps(1), GTS, metas(1))
    two = build_loss()(zero_maps(2), GTS * 2, metas(2))
    unscaled = build_loss(scale_by_batch=False)(zero_maps(2), GTS * 2, metas(2))
    for name in one:
        assert two[name].item() == pytest.approx(2 * one[name].item(), rel=1e-6)
        assert unscaled[name].item() == pytest.approx(one[name].item(), rel=1e-6)


def test_objectness_weights_must_match_the_levels():
    with pytest.raises(ValueError, match='2 obj_level_weights for 3 levels'):
        build_loss(obj_level_weights=(4.0, 1.0))
