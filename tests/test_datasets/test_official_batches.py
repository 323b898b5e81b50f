"""The official test's batches (Scaled-YOLOv4 test.py at batch 8) and its box arithmetic, against the reference's
formulas (docs/reference/yolov4_csp.md §3) written out here on hand-made image sizes."""
import math

import numpy as np
import pytest
import torch

from parnet_det.datasets import OfficialBatchShapes, RectLetterbox
from parnet_det.models.dense_heads import boxes_to_image


def reference_batch_shapes(sizes, batch_size, img_size=640, stride=64, pad=0.5):
    """Per image (in file-name order) its batch shape (H, W), as LoadImagesAndLabels(rect=True) computes it."""
    shapes = np.array([(w, h) for h, w in sizes], dtype=np.float64)
    ar = shapes[:, 1] / shapes[:, 0]
    irect = ar.argsort()
    ar = ar[irect]
    batch_index = np.floor(np.arange(len(sizes)) / batch_size).astype(int)
    batch_shapes = []
    for i in range(batch_index[-1] + 1):
        ari = ar[batch_index == i]
        mini, maxi = ari.min(), ari.max()
        shape = [maxi, 1] if maxi < 1 else [1, 1 / mini] if mini > 1 else [1, 1]
        batch_shapes.append(np.ceil(np.array(shape) * img_size / stride + pad).astype(int) * stride)
    per_image = {}
    for position, image in enumerate(irect):
        per_image[int(image)] = tuple(int(v) for v in batch_shapes[batch_index[position]])
    return [int(i) for i in irect], per_image


# (h, w): 4 wide, 4 tall, then a wide and a tall one that share the last batch of 2 -> 704 x 704.
SIZES = [(480, 640), (427, 640), (360, 640), (512, 640), (640, 480), (640, 427), (640, 612), (640, 360),
         (500, 640), (640, 500)]


def data_list(sizes):
    # File names out of order on purpose: the official order is the sorted file names, then the aspect ratio.
    return [dict(img_path=f'/val/{name:012d}.jpg', height=h, width=w)
            for name, (h, w) in zip(range(len(sizes), 0, -1), sizes)]


@pytest.mark.parametrize('batch_size', [1, 2, 4, 8])
def test_batch_shapes_are_the_official_ones(batch_size):
    infos = data_list(SIZES)
    by_name = sorted(infos, key=lambda info: info['img_path'])
    order, expected = reference_batch_shapes([(i['height'], i['width']) for i in by_name], batch_size)
    ordered = OfficialBatchShapes(batch_size=batch_size)(list(infos))
    assert [info['img_path'] for info in ordered] == [by_name[i]['img_path'] for i in order]
    assert [info['batch_shape'] for info in ordered] == [expected[i] for i in order]


def test_hand_computed_shapes():
    # Batch 4 over the sorted ratios: 4 wide (the squarest h/w 0.78125: ceil(7.8125 + 0.5) x 64 = 576 high), one
    # wide and 3 tall (704 x 704), 2 tall (the squarest h/w 1.499: ceil(6.67 + 0.5) x 64 = 512 wide).
    shapes = [info['batch_shape'] for info in OfficialBatchShapes(batch_size=4)(data_list(SIZES))]
    ratios = sorted(h / w for h, w in SIZES)
    assert ratios[3] == 0.78125 and ratios[4] < 1 < ratios[5] and ratios[8] == 640 / 427
    assert shapes == [(576, 704)] * 4 + [(704, 704)] * 4 + [(704, 512)] * 2
    # At batch 1 each image has its own rectangle: RectLetterbox's.
    own = {(info['height'], info['width']): info['batch_shape'] for info in OfficialBatchShapes(1)(data_list(SIZES))}
    assert all(own[size] == RectLetterbox().padded_shape(*size) for size in SIZES)
    assert OfficialBatchShapes(batch_size=2, stride=32).batch_shape(np.array([427 / 640])) == (448, 672)


def test_the_letterbox_takes_the_batch_shape():
    image = np.zeros((427, 640, 3), dtype=np.uint8)
    out = RectLetterbox()(dict(img=image, ori_shape=(427, 640), batch_shape=(704, 704)))
    # dh = (704 - 427) / 2 = 138.5: top round(138.4) = 138, bottom 139; dw = 32 each side.
    assert out['img'].shape[:2] == (704, 704)
    assert out['pad_param'].tolist() == [138, 139, 32, 32]


def reference_scale_coords(boxes, img1_shape, img0_shape, ratio_pad):
    """Scaled-YOLOv4's utils/general.py scale_coords with the dataloader's ratio_pad, then clip_coords."""
    gain, pad = ratio_pad[0][0], ratio_pad[1]
    boxes = boxes.clone()
    boxes[:, [0, 2]] -= pad[0]
    boxes[:, [1, 3]] -= pad[1]
    boxes[:, :4] /= gain
    boxes[:, [0, 2]] = boxes[:, [0, 2]].clamp(0, img0_shape[1])
    boxes[:, [1, 3]] = boxes[:, [1, 3]].clamp(0, img0_shape[0])
    return boxes


def test_official_unletterbox_is_scale_coords():
    # A 641 x 853 original: long side 853 -> 640, height int(641 x 640 / 853) = 480 (480.9 truncated).
    h0, w0 = 641, 853
    ratio = 640 / max(h0, w0)
    h, w = int(h0 * ratio), int(w0 * ratio)  # 480, 640 (the int() truncation of load_image)
    height, width = 576, 704
    dw, dh = (width - w) / 2, (height - h) / 2  # 32.0, 48.0
    top, left = int(round(dh - 0.1)), int(round(dw - 0.1))
    meta = dict(img_shape=(height, width), ori_shape=(h0, w0), scale_factor=(w / w0, h / h0),
                pad_param=np.array([top, height - h - top, left, width - w - left], dtype=np.float32))
    boxes = torch.tensor([[40.0, 50.0, 300.5, 400.25], [-5.0, 30.0, 710.0, 560.0], [600.0, 500.0, 700.0, 570.0]])
    expected = reference_scale_coords(boxes.clamp(min=0).clamp(max=torch.tensor([width, height] * 2)),
                                      (height, width), (h0, w0), ((h / h0, w / w0), (dw, dh)))
    torch.testing.assert_close(boxes_to_image(boxes, meta, rescale=True, unletterbox='official'), expected)
    # Odd padding: 640 x 427 in 704 x 512 (dh = 42.5, the image placed at 42): 'placed' is half a pixel apart.
    meta = dict(img_shape=(512, 704), ori_shape=(427, 640), scale_factor=(1.0, 1.0),
                pad_param=np.array([42, 43, 32, 32], dtype=np.float32))
    box = torch.tensor([[100.0, 100.0, 200.0, 200.0]])
    official = boxes_to_image(box, meta, rescale=True, unletterbox='official')
    placed = boxes_to_image(box, meta, rescale=True)
    torch.testing.assert_close(official, reference_scale_coords(box, (512, 704), (427, 640), ((1.0, 1.0),
                                                                                               (32.0, 42.5))))
    assert (placed - official).tolist() == [[0.0, 0.5, 0.0, 0.5]]
    with pytest.raises(ValueError, match='unletterbox must be one of'):
        boxes_to_image(box, meta, rescale=True, unletterbox='exact')
    assert math.isclose(w / w0, h / h0, rel_tol=1e-2) and w / w0 != h / h0  # the gains the modes tell apart
