"""Scaled-YOLOv4's training augmentation (docs/reference/yolov4_csp.md §4.7) against its formulas."""
import math
import re

import cv2
import numpy as np
import pytest
import torch

from mmdet.datasets.transforms import Mosaic, RandomAffine
from mmdet.structures.bbox import HorizontalBoxes

from parnet_det.datasets.transforms import CentredRandomPerspective, RandomHSVGain, apply_hsv_gains, box_candidates

GREY = (114, 114, 114)


def sample(img, boxes):
    boxes = np.array(boxes, dtype=np.float32).reshape(-1, 4)
    return dict(img=img, img_shape=img.shape[:2], gt_bboxes=HorizontalBoxes(boxes),
                gt_bboxes_labels=np.arange(len(boxes)), gt_ignore_flags=np.zeros(len(boxes), dtype=bool))


def random_image(height, width, seed=0):
    return np.random.RandomState(seed).randint(0, 256, (height, width, 3), dtype=np.uint8)


def redraw(seed, ranges):
    """The transform's draws again: one numpy uniform per (low, high), in the documented order."""
    np.random.seed(seed)
    return [np.random.uniform(low, high) for low, high in ranges]


def warped_box(matrix, box, out_w, out_h):
    """Bounding box of the 4 corners through ``matrix`` (divided by their third coordinate), clipped."""
    x1, y1, x2, y2 = box
    corners = matrix @ np.array([[x1, x1, x2, x2], [y1, y2, y1, y2], [1, 1, 1, 1]], dtype=np.float64)
    xs, ys = corners[0] / corners[2], corners[1] / corners[2]
    return [max(xs.min(), 0), max(ys.min(), 0), min(xs.max(), out_w), min(ys.max(), out_h)]


def mostly_equal(image, expected):
    """Equal but for a few pixels where the interpolation's fixed-point rounding may tip the other way."""
    return image.shape == expected.shape and (np.abs(image.astype(int) - expected) > 1).mean() < 1e-3


def test_scale_and_translation_give_the_documented_matrix():
    # No rotation, shear or perspective: M = [[f, 0, t_x w - f W / 2], [0, f, t_y h - f H / 2], [0, 0, 1]].
    img = random_image(300, 200)  # H 300, W 200; border (-50, -40) -> output h 220, w 100
    box = [60, 90, 140, 210]
    transform = CentredRandomPerspective(translate=0.1, scale=0.5, border=(-50, -40))
    np.random.seed(3)
    results = transform(sample(img, [box]))
    zero = (0.0, 0.0)
    draws = redraw(3, [zero, zero, zero, (0.5, 1.5), zero, zero, (0.4, 0.6), (0.4, 0.6)])
    f, t_x, t_y = draws[3], draws[6], draws[7]
    expected = np.array([[f, 0, t_x * 100 - f * 100], [0, f, t_y * 220 - f * 150], [0, 0, 1]])
    assert results['img_shape'] == (220, 100)
    np.testing.assert_allclose(results['homography_matrix'], expected, atol=1e-9)
    np.testing.assert_allclose(results['gt_bboxes'].numpy()[0], warped_box(expected, box, 100, 220), rtol=1e-5)
    assert mostly_equal(results['img'], cv2.warpAffine(img, expected[:2], (100, 220), borderValue=GREY))


def test_every_term_composes_as_t_s_r_p_c():
    img = random_image(160, 240)  # border (-40, -30) -> output h 100, w 160
    box = [100, 60, 140, 100]
    transform = CentredRandomPerspective(degrees=10, translate=0.1, scale=0.5, shear=5, perspective=1e-4,
                                         border=(-40, -30))
    np.random.seed(11)
    results = transform(sample(img, [box]))
    p_x, p_y, a, f, g_x, g_y, t_x, t_y = redraw(11, [(-1e-4, 1e-4)] * 2 + [(-10, 10), (0.5, 1.5)] + [(-5, 5)] * 2 +
                                                [(0.4, 0.6)] * 2)
    centre = np.array([[1, 0, -120], [0, 1, -80], [0, 0, 1]])
    perspective = np.array([[1, 0, 0], [0, 1, 0], [p_x, p_y, 1]])
    rotate_scale = np.vstack([cv2.getRotationMatrix2D((0, 0), a, f), [0, 0, 1]])  # the recipe's own R
    shear = np.array([[1, math.tan(math.radians(g_x)), 0], [math.tan(math.radians(g_y)), 1, 0], [0, 0, 1]])
    translate = np.array([[1, 0, t_x * 160], [0, 1, t_y * 100], [0, 0, 1]])
    expected = translate @ shear @ rotate_scale @ perspective @ centre
    np.testing.assert_allclose(results['homography_matrix'], expected, rtol=1e-9, atol=1e-12)
    # Whatever the other terms, the input's centre lands at (t_x w, t_y h).
    centre_out = results['homography_matrix'] @ [120, 80, 1]
    np.testing.assert_allclose(centre_out[:2] / centre_out[2], [t_x * 160, t_y * 100], atol=1e-9)
    np.testing.assert_allclose(results['gt_bboxes'].numpy()[0], warped_box(expected, box, 160, 100), rtol=1e-4)
    assert mostly_equal(results['img'], cv2.warpPerspective(img, expected, (160, 100), borderValue=GREY))


def test_box_candidates_at_each_threshold():
    # f = 1 and no translation: M moves the 200 x 200 input by -50 into the 100 x 100 output.
    transform = CentredRandomPerspective(translate=0.0, scale=0.0, border=(-50, -50))
    boxes = {
        'width 2.1 px': ([100, 100, 102.1, 120], True),
        'width 1.9 px': ([100, 100, 101.9, 120], False),
        'height 2.1 px': ([100, 100, 120, 102.1], True),
        'height 1.9 px': ([100, 100, 120, 101.9], False),
        # Cut by the output's left edge (input x = 50): 5.7 of 55.7 px left (10.2 %), 5.4 of 55.4 (9.7 %).
        'area 10.2 %': ([0, 100, 55.7, 150], True),
        'area 9.7 %': ([0, 100, 55.4, 150], False),
        'aspect 19.97': ([100, 60, 103, 119.9], True),
        'aspect 20.03': ([100, 60, 103, 120.1], False),
    }
    results = transform(sample(random_image(200, 200), [box for box, _ in boxes.values()]))
    kept = {list(boxes)[i] for i in results['gt_bboxes_labels']}
    assert kept == {name for name, (_, keep) in boxes.items() if keep}
    assert len(results['gt_bboxes']) == len(results['gt_ignore_flags']) == len(kept)


def test_box_candidates_compare_with_the_area_of_the_box_scaled_by_f():
    # A 100 x 100 box, f = 0.5: the scaled box has 50 x 50 = 2500 px^2 (f^2, not f: 5000).
    before = torch.tensor([[100.0, 100.0], [100.0, 100.0]])
    after = torch.tensor([[16.0, 16.0], [15.0, 15.0]])  # 256 / 2500 = 10.2 %, 225 / 2500 = 9 %
    assert box_candidates(before, after, 0.5).tolist() == [True, False]


def test_mosaic_point_is_seen_at_scale_1():
    # mmdet's Mosaic, then the perspective at f = 1, translate 0: the output is the canvas's centre s x s, so
    # the mosaic point (xc, yc) in [s/2, 3s/2] lands at (xc - s/2, yc - s/2), the four tiles meeting there.
    s = 64
    colours = [(10, 0, 0), (0, 20, 0), (0, 0, 30), (40, 40, 40)]
    tiles = [sample(np.full((48, 64, 3), colour, dtype=np.uint8), [[8, 8, 40, 40]]) for colour in colours]
    np.random.seed(0)
    mosaic = Mosaic(img_scale=(s, s), pad_val=114.0)(dict(tiles[0], mix_results=tiles[1:]))
    canvas = mosaic['img'].copy()
    ys, xs = np.nonzero((canvas == colours[0]).all(-1))
    yc, xc = ys.max() + 1, xs.max() + 1
    assert canvas.shape == (2 * s, 2 * s, 3) and s // 2 <= min(xc, yc) and max(xc, yc) <= 3 * s // 2
    out = CentredRandomPerspective(translate=0.0, scale=0.0, border=(-s // 2, -s // 2))(mosaic)['img']
    np.testing.assert_array_equal(out, canvas[s // 2:3 * s // 2, s // 2:3 * s // 2])
    x, y = xc - s // 2, yc - s // 2
    assert [tuple(out[y - 1, x - 1]), tuple(out[y - 1, x]), tuple(out[y, x - 1]), tuple(out[y, x])] == colours
    # mmdet's RandomAffine at the same settings keeps the canvas's top-left s x s instead.
    affine = RandomAffine(max_rotate_degree=0, max_translate_ratio=0, scaling_ratio_range=(1, 1), max_shear_degree=0,
                          border=(-s // 2, -s // 2), border_val=GREY)
    np.testing.assert_array_equal(affine(sample(canvas.copy(), []))['img'], canvas[:s, :s])


def test_hsv_gains_wrap_the_hue_and_clip_saturation_and_value():
    # BGR (100, 50, 200): V = 200, S = 255 x 150 / 200 = 191, H = (360 - 60 x 50 / 150) / 2 = 170.
    img = np.array([[[100, 50, 200]]], dtype=np.uint8)
    assert cv2.cvtColor(img, cv2.COLOR_BGR2HSV)[0, 0].tolist() == [170, 191, 200]
    # H 170 x 1.06 = 180.2 -> 0.2 -> 0; S 286.5 -> 255; V 280 -> 255: pure red.
    assert apply_hsv_gains(img, (1.06, 1.5, 1.4))[0, 0].tolist() == [0, 0, 255]
    # Halved: H 85, S 95.5 -> 95, V 100.
    expected = cv2.cvtColor(np.array([[[85, 95, 100]]], dtype=np.uint8), cv2.COLOR_HSV2BGR)
    np.testing.assert_array_equal(apply_hsv_gains(img, (0.5, 0.5, 0.5)), expected)


def test_hsv_factors_are_drawn_per_image_as_documented():
    img = random_image(16, 16, seed=2)
    np.random.seed(1)
    out = RandomHSVGain(hue_gain=0.015, saturation_gain=0.7, value_gain=0.4)(dict(img=img))['img']
    np.random.seed(1)
    r_h, r_s, r_v = 1 + np.random.uniform(-1, 1, 3) * np.array([0.015, 0.7, 0.4])
    hsv = cv2.cvtColor(img, cv2.COLOR_BGR2HSV).astype(np.float64)
    hsv[..., 0] = np.floor(np.mod(hsv[..., 0] * r_h, 180))
    hsv[..., 1] = np.floor(np.minimum(hsv[..., 1] * r_s, 255))
    hsv[..., 2] = np.floor(np.minimum(hsv[..., 2] * r_v, 255))
    np.testing.assert_array_equal(out, cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2BGR))


@pytest.mark.parametrize('make, message', [
    (lambda: CentredRandomPerspective(scale=1.0), 'scale must be in [0, 1)'),
    (lambda: CentredRandomPerspective(translate=-0.1), 'translate must be >= 0'),
    (lambda: CentredRandomPerspective(degrees=-1), 'degrees must be >= 0'),
    (lambda: CentredRandomPerspective(border=(-320, )), 'border is (border_x, border_y)'),
    (lambda: RandomHSVGain(saturation_gain=1.5), 'gains must be in [0, 1]'),
])
def test_bad_arguments_are_refused_in_one_line(make, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        make()


def test_bad_inputs_are_refused_in_one_line():
    with pytest.raises(ValueError, match='leaves nothing of a 100x100 image'):
        CentredRandomPerspective(border=(-50, -50))(sample(random_image(100, 100), []))
    with pytest.raises(ValueError, match='needs an 8-bit BGR image'):
        RandomHSVGain()(dict(img=np.zeros((4, 4, 3), dtype=np.float32)))
