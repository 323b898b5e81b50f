"""A generated COCO-format detection dataset: rendered shapes on cluttered backgrounds.

Each class is a shape (circle, rectangle, triangle, ...) drawn with a random size, aspect ratio,
rotation, colour and shading, over a background of colour gradients, lines, small blobs and
noise that are not objects. The result is small enough to train a detector on a CPU in minutes,
yet needs real features to solve: shape (not colour) decides the class, sizes range from 8% to
45% of the image side (by default) and objects partly occlude each other.

The output is byte-identical for a given seed and arguments, and is laid out like COCO::

    out_dir/
        train/000001.jpg ...
        val/000001.jpg ...
        annotations/instances_train.json
        annotations/instances_val.json
"""
import os
import os.path as osp
from typing import List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np

from ..utils.fileio import strict_json

# Every shape the generator can draw, in category order; a dataset with ``num_classes=k`` uses
# the first k.
SHAPES = ('circle', 'rectangle', 'triangle', 'ring', 'cross', 'star', 'crescent', 'hexagon')
DEFAULT_NUM_CLASSES = 5
# The classes of a dataset generated with the defaults.
CLASSES = SHAPES[:DEFAULT_NUM_CLASSES]

# Round shapes keep near-round proportions so that their names stay true; polygons stretch more.
_ROUND_SHAPES = ('circle', 'ring', 'crescent')
_MAX_ASPECT_RATIO = dict(round=1.25, polygon=1.8)
# fillPoly's fixed-point precision: vertices carry 4 fractional bits, so small shapes keep
# their form instead of snapping to the pixel grid.
_SUBPIXEL_BITS = 4
# Largest radius of a clutter blob, as a fraction of the image side: blobs stay at most half as
# wide as the smallest object by default (8%), so none can pass for one.
_MAX_BLOB_RADIUS = 0.02
# Tries to find a position where a new object hides no earlier one too much.
_PLACEMENT_TRIES = 10
# The object colour is the candidate farthest from what lies beneath it, so every object stands
# out from its surroundings without all objects sharing one colour.
_COLOUR_CANDIDATES = 8
_IMAGE_PREFIXES = dict(train='train/', val='val/')


def synthetic_coco_cfg_options(data_root: str) -> List[str]:
    """``--cfg-options`` that point a config (e.g. ``configs/demo/``) at a generated dataset.

    A config's top-level ``data_root`` is already substituted into the
    dataloaders and evaluators when the file is parsed, so overriding it alone
    changes nothing: every use is overridden instead.

    Args:
        data_root (str): The ``out_dir`` the dataset was generated into.

    Returns:
        list[str]: ``key=value`` strings for the train/val/test dataloaders and the
        val/test evaluators.
    """
    val_ann_file = osp.join(data_root, 'annotations/instances_val.json')
    return ([f'{split}_dataloader.dataset.data_root={data_root}' for split in ('train', 'val', 'test')]
            + [f'{split}_evaluator.ann_file={val_ann_file}' for split in ('val', 'test')])


def synthetic_coco_metainfo(num_classes: int = DEFAULT_NUM_CLASSES) -> dict:
    """The ``metainfo`` that an mmdet dataset needs for a generated dataset.

    Args:
        num_classes (int): Number of classes the dataset was generated with.
            Defaults to ``DEFAULT_NUM_CLASSES`` (5).

    Returns:
        dict: ``dict(classes=(...))`` to pass as ``CocoDataset(metainfo=...)``.
    """
    _check_num_classes(num_classes)
    return dict(classes=SHAPES[:num_classes])


def generate_synthetic_coco(out_dir: str,
                            num_train: int = 400,
                            num_val: int = 100,
                            image_size: Union[int, Tuple[int, int]] = 256,
                            num_classes: int = DEFAULT_NUM_CLASSES,
                            seed: int = 0,
                            max_objects: int = 6,
                            size_range: Tuple[float, float] = (0.08, 0.45),
                            max_occlusion: float = 0.6,
                            jpeg_quality: int = 95) -> dict:
    """Render a train and a val split of shape images with COCO instance annotations.

    Every image holds 1 to ``max_objects`` objects of uniformly drawn classes. An object's size
    (the longer side of its box) is drawn log-uniformly from ``size_range`` times the shorter
    image side, so small objects are as common as large ones. Objects lie fully inside the image
    and are painted in turn; a new object goes where it leaves every earlier object at least
    ``1 - max_occlusion`` of its pixels visible, or is dropped after a few tries, so every
    object in the image is annotated. A box is the full extent of its object, as drawn before
    any occlusion (a partly hidden shape still has its whole box), in COCO's ``[x, y, w, h]``
    pixel-edge convention; ``area`` is the object's visible pixel count, as COCO derives it
    from a mask.

    Each image draws from its own random stream, seeded by ``(seed, split, index)``, so an
    image does not depend on how many others are generated: the first images of a small set
    equal those of a larger one with the same seed.

    Args:
        out_dir (str): Directory to write into; created if missing. Existing files of the same
            names are overwritten.
        num_train (int): Number of training images. Defaults to 400.
        num_val (int): Number of validation images. Defaults to 100.
        image_size (int | tuple[int, int]): Image size, ``(height, width)`` or one int for
            square images. Defaults to 256.
        num_classes (int): Number of classes, the first ``num_classes`` of ``SHAPES``.
            Defaults to 5 (circle, rectangle, triangle, ring, cross).
        seed (int): Seed of the whole dataset. Defaults to 0.
        max_objects (int): Most objects in one image. Defaults to 6.
        size_range (tuple[float, float]): Smallest and largest object size, as fractions of the
            shorter image side, at most 0.9. Defaults to (0.08, 0.45).
        max_occlusion (float): Largest fraction of an object that later objects may hide.
            Defaults to 0.6.
        jpeg_quality (int): JPEG quality of the written images. Defaults to 95.

    Returns:
        dict: ``data_root`` (``out_dir``), ``classes``, and per split (``train``, ``val``) the
        ``ann_file`` and ``data_prefix`` relative to ``data_root``, as mmdet's ``CocoDataset``
        takes them, with ``num_images`` and ``num_objects``.
    """
    height, width = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    _check_num_classes(num_classes)
    if min(height, width) < 32:
        raise ValueError(f'image_size must be at least 32 pixels, got {image_size}')
    if not 0 < size_range[0] <= size_range[1] <= 0.9:
        raise ValueError(f'size_range must satisfy 0 < min <= max <= 0.9, got {size_range}')
    if max_objects < 1:
        raise ValueError(f'max_objects must be at least 1, got {max_objects}')

    classes = SHAPES[:num_classes]
    render_args = dict(height=height, width=width, classes=classes, max_objects=max_objects,
                       size_range=size_range, max_occlusion=max_occlusion)
    summary = dict(data_root=out_dir, classes=classes)
    os.makedirs(osp.join(out_dir, 'annotations'), exist_ok=True)
    for split_index, (split, num_images) in enumerate((('train', num_train), ('val', num_val))):
        image_dir = osp.join(out_dir, _IMAGE_PREFIXES[split])
        os.makedirs(image_dir, exist_ok=True)
        images, annotations = [], []
        for image_id in range(1, num_images + 1):
            rng = np.random.default_rng((seed, split_index, image_id))
            image, objects = _render_image(rng, **render_args)
            file_name = f'{image_id:06d}.jpg'
            ok, encoded = cv2.imencode('.jpg', image, [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality])
            if not ok:
                raise RuntimeError(f'JPEG encoding failed for {split}/{file_name}')
            encoded.tofile(osp.join(image_dir, file_name))
            images.append(dict(id=image_id, file_name=file_name, height=height, width=width))
            for label, bbox, area in objects:
                # COCO ids start at 1: pycocotools' matcher reads id 0 as "unmatched".
                annotations.append(dict(id=len(annotations) + 1, image_id=image_id, category_id=label + 1,
                                        bbox=bbox, area=area, iscrowd=0))
        ann_file = f'annotations/instances_{split}.json'
        coco = dict(
            info=dict(description='parnet_det synthetic shapes', version='1.0', seed=seed,
                      image_size=[height, width], max_objects=max_objects,
                      size_range=list(size_range), max_occlusion=max_occlusion),
            licenses=[],
            images=images,
            annotations=annotations,
            categories=[dict(id=i + 1, name=name, supercategory='shape') for i, name in enumerate(classes)])
        with open(osp.join(out_dir, ann_file), 'w') as f:
            f.write(strict_json(coco))
        summary[split] = dict(ann_file=ann_file, data_prefix=dict(img=_IMAGE_PREFIXES[split]),
                              num_images=num_images, num_objects=len(annotations))
    return summary


def _check_num_classes(num_classes: int) -> None:
    if not 1 <= num_classes <= len(SHAPES):
        raise ValueError(f'num_classes must be in [1, {len(SHAPES)}], got {num_classes}')


def _render_image(rng: np.random.Generator, height: int, width: int, classes: Sequence[str],
                  max_objects: int, size_range: Tuple[float, float],
                  max_occlusion: float) -> Tuple[np.ndarray, List[Tuple[int, List[int], int]]]:
    """Draw one image; return it (BGR, uint8) and its objects as ``(label, [x, y, w, h], area)``."""
    canvas = _render_background(rng, height, width).astype(np.float32)
    placed = []  # per object: label, full mask, visible mask
    for _ in range(rng.integers(1, max_objects + 1)):
        label = int(rng.integers(len(classes)))
        outline, holes = _unit_shape(classes[label], rng)
        size = min(height, width) * np.exp(rng.uniform(*np.log(size_range)))
        outline, holes = _scale_and_rotate(outline, holes, classes[label], size, rng)
        mask = _place(outline, holes, placed, height, width, max_occlusion, rng)
        if mask is None:
            continue
        for other in placed:
            other['visible'] &= ~mask
        _paint(canvas, mask, rng)
        placed.append(dict(label=label, mask=mask, visible=mask.copy()))

    # Sensor-like noise over everything, so that flat colours are not a shortcut.
    canvas += rng.normal(0, rng.uniform(2, 8), canvas.shape).astype(np.float32)
    image = np.clip(np.rint(canvas), 0, 255).astype(np.uint8)

    objects = []
    for obj in placed:
        rows = np.flatnonzero(obj['mask'].any(axis=1))
        cols = np.flatnonzero(obj['mask'].any(axis=0))
        bbox = [int(cols[0]), int(rows[0]), int(cols[-1] - cols[0] + 1), int(rows[-1] - rows[0] + 1)]
        objects.append((obj['label'], bbox, int(obj['visible'].sum())))
    return image, objects


def _render_background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A linear gradient between two colours, with random lines and small blobs on it."""
    angle = rng.uniform(0, 2 * np.pi)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    ramp = xs * np.cos(angle) + ys * np.sin(angle)
    ramp = (ramp - ramp.min()) / max(float(np.ptp(ramp)), 1.0)
    start, end = rng.uniform(0, 255, (2, 3)).astype(np.float32)
    background = np.ascontiguousarray((start + (end - start) * ramp[..., None]).astype(np.uint8))

    side = min(height, width)
    for _ in range(rng.integers(2, 9)):
        x1, x2 = rng.integers(0, width, 2)
        y1, y2 = rng.integers(0, height, 2)
        cv2.line(background, (int(x1), int(y1)), (int(x2), int(y2)), _random_colour(rng),
                 thickness=int(rng.integers(1, 3)), lineType=cv2.LINE_AA)
    for _ in range(rng.integers(5, 21)):
        center = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        axes = tuple(int(a) for a in np.maximum(1, rng.uniform(0.005, _MAX_BLOB_RADIUS, 2) * side))
        cv2.ellipse(background, center, axes, float(rng.uniform(0, 180)), 0, 360, _random_colour(rng),
                    thickness=-1, lineType=cv2.LINE_AA)
    return background


def _random_colour(rng: np.random.Generator) -> Tuple[int, int, int]:
    return tuple(int(c) for c in rng.integers(0, 256, 3))


def _regular_polygon(num_vertices: int, radius: float = 1.0, start_angle: float = -np.pi / 2) -> np.ndarray:
    angles = start_angle + np.arange(num_vertices) * 2 * np.pi / num_vertices
    return radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)


def _unit_shape(name: str, rng: np.random.Generator) -> Tuple[np.ndarray, List[np.ndarray]]:
    """The outline of shape ``name`` within the unit disk, and the holes cut out of it."""
    if name == 'circle':
        return _regular_polygon(64), []
    if name == 'rectangle':
        return np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], dtype=np.float64), []
    if name == 'triangle':
        return _regular_polygon(3), []
    if name == 'ring':
        return _regular_polygon(64), [_regular_polygon(64, radius=rng.uniform(0.45, 0.7))]
    if name == 'cross':
        arm = rng.uniform(0.22, 0.38)  # half the width of an arm
        return np.array([[-arm, -1], [arm, -1], [arm, -arm], [1, -arm], [1, arm], [arm, arm],
                         [arm, 1], [-arm, 1], [-arm, arm], [-1, arm], [-1, -arm], [-arm, -arm]]), []
    if name == 'star':
        outer = _regular_polygon(5)
        inner = _regular_polygon(5, radius=rng.uniform(0.38, 0.5), start_angle=-np.pi / 2 + np.pi / 5)
        return np.stack([outer, inner], axis=1).reshape(-1, 2), []
    if name == 'crescent':
        return _crescent(bite_radius=rng.uniform(0.75, 0.9), bite_offset=rng.uniform(0.35, 0.55)), []
    if name == 'hexagon':
        return _regular_polygon(6, start_angle=0.0), []
    raise ValueError(f'unknown shape {name!r}')


def _crescent(bite_radius: float, bite_offset: float, num_vertices: int = 64) -> np.ndarray:
    """The unit disk less a disk of ``bite_radius`` centred ``bite_offset`` to its right, as one
    polygon, so that the outline's box is the drawn shape's box."""
    # Where the two circles cross: (corner_x, +-corner_y).
    corner_x = (1 + bite_offset**2 - bite_radius**2) / (2 * bite_offset)
    corner_y = np.sqrt(1 - corner_x**2)
    # The outer arc runs from the upper corner round the left to the lower one; the bite's arc
    # runs back inside the disk.
    outer_start = np.arctan2(corner_y, corner_x)
    outer = np.linspace(outer_start, 2 * np.pi - outer_start, num_vertices)
    bite_start = np.arctan2(corner_y, corner_x - bite_offset)
    bite = np.linspace(2 * np.pi - bite_start, bite_start, num_vertices // 2)
    return np.concatenate([
        np.stack([np.cos(outer), np.sin(outer)], axis=1),
        np.stack([bite_offset + bite_radius * np.cos(bite), bite_radius * np.sin(bite)], axis=1)])


def _scale_and_rotate(outline: np.ndarray, holes: List[np.ndarray], name: str, size: float,
                      rng: np.random.Generator) -> Tuple[np.ndarray, List[np.ndarray]]:
    """Stretch, rotate and scale a unit shape so that its outline's box has longer side ``size``."""
    max_aspect = _MAX_ASPECT_RATIO['round' if name in _ROUND_SHAPES else 'polygon']
    aspect = np.exp(rng.uniform(-np.log(max_aspect), np.log(max_aspect)))
    angle = rng.uniform(0, 2 * np.pi)
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    transform = rotation @ np.diag([np.sqrt(aspect), 1 / np.sqrt(aspect)])
    outline = outline @ transform.T
    extent = np.ptp(outline, axis=0).max()
    return outline * (size / extent), [hole @ transform.T * (size / extent) for hole in holes]


def _place(outline: np.ndarray, holes: List[np.ndarray], placed: List[dict], height: int, width: int,
           max_occlusion: float, rng: np.random.Generator) -> Optional[np.ndarray]:
    """Find a position inside the image where the shape hides no placed object by more than
    ``max_occlusion``; return the shape's mask there, or None if none was found."""
    low, high = outline.min(axis=0), outline.max(axis=0)
    for _ in range(_PLACEMENT_TRIES):
        # Keep the outline's box (which contains the drawn pixels) inside the image.
        offset = np.array([rng.uniform(-low[0], width - 1 - high[0]), rng.uniform(-low[1], height - 1 - high[1])])
        mask = _rasterize(outline + offset, height, width)
        for hole in holes:
            mask &= ~_rasterize(hole + offset, height, width)
        # A shape of a few pixels can vanish on the pixel grid; it would have no box.
        if mask.any() and all((other['visible'] & ~mask).sum() >= (1 - max_occlusion) * other['mask'].sum()
                              for other in placed):
            return mask
    return None


def _rasterize(polygon: np.ndarray, height: int, width: int) -> np.ndarray:
    mask = np.zeros((height, width), np.uint8)
    vertices = np.rint(polygon * (1 << _SUBPIXEL_BITS)).astype(np.int32)
    cv2.fillPoly(mask, [vertices], 1, lineType=cv2.LINE_8, shift=_SUBPIXEL_BITS)
    return mask.astype(bool)


def _paint(canvas: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> None:
    """Fill ``mask`` on ``canvas`` with a colour that contrasts with what lies beneath, shaded
    linearly across the object as if lit from one side."""
    rows, cols = np.nonzero(mask)
    beneath = canvas[rows, cols].mean(axis=0)
    candidates = rng.uniform(0, 255, (_COLOUR_CANDIDATES, 3)).astype(np.float32)
    colour = candidates[np.argmax(np.linalg.norm(candidates - beneath, axis=1))]

    direction = rng.uniform(0, 2 * np.pi)
    along = cols * np.cos(direction) + rows * np.sin(direction)
    along = (along - along.mean()) / max(float(np.abs(along - along.mean()).max()), 1.0)
    shading = 1 + rng.uniform(-0.25, 0.25) * along.astype(np.float32)
    canvas[rows, cols] = np.clip(colour * shading[:, None], 0, 255)
