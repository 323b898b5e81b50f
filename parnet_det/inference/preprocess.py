"""Pre-processing on the device: decoded images -> one normalised batch, in the test pipeline's geometry.

mmdet's test pipeline resizes and pads each image on the host with OpenCV,
one image at a time, and the data preprocessor then normalises on the device.
For serving, the step runs on the device here: the uint8 images are copied
once (through pinned memory to a GPU, without waiting for it), resized with
bilinear interpolation (OpenCV's ``INTER_LINEAR`` without anti-aliasing, as
mmcv's ``Resize``; a pipeline whose ``Resize`` asks for another interpolation,
e.g. ``'area'``, is resized on the host with mmcv's own function, exactly),
padded with the pipeline's pad value and normalised as the config's data
preprocessor does.

Two geometries, the pipeline's:

- YOLO-style pipelines (resize to fit, pad to a square at the bottom right):
  a fixed input size, what compiled models and CUDA graphs need, and exactly
  the pipeline's geometry. mmdet's other pipelines pad each batch to its
  largest image instead (different padding, slightly different outputs near
  the borders), and with a non-square keep-ratio scale (e.g. 1333 x 800) a
  portrait image resizes taller than the landscape input: that is refused,
  naming the fix (a larger ``input_size``).
- Pipelines with :class:`~parnet_det.datasets.RectLetterbox` (Scaled-YOLOv4's
  test): each image is padded centred to its own rectangle, a multiple of the
  stride (``pad_param`` recorded, as the transform does); a batch of several
  shapes is padded at the bottom right to the largest, as mmdet's data
  preprocessor pads it. With an explicit ``input_size`` the rectangle is that
  fixed size instead (the image still centred): the shape compiled models,
  CUDA graphs and ONNX graphs need, no longer the official test's.
"""
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple, Union

import mmcv
import numpy as np
import torch
import torch.nn.functional as F
from mmengine.config import Config

from ..datasets.transforms import RectLetterbox
from ..utils.config import dataset_pipeline, pipeline_step

ImageInput = Union[str, np.ndarray]


def round_up(size: int, divisor: int) -> int:
    return -(-size // divisor) * divisor


@dataclass
class PreprocessSettings:
    """What the config's test pipeline and data preprocessor do to an image.

    Args:
        input_size (tuple[int, int], optional): (height, width) of the network
            input; None (only with ``letterbox``): each image's own rectangle.
        resize_scale (tuple[int, int]): The ``Resize`` scale, (width, height)
            as mmcv writes it.
        keep_ratio (bool): Resize to fit ``resize_scale`` keeping the aspect
            ratio, or stretch to it.
        pad_pixel (tuple[float, float, float]): The padding, per channel of the
            decoded (BGR) image, before normalisation: the pipeline's ``Pad`` or
            ``RectLetterbox`` value, or without either the pixel that the data
            preprocessor's post-normalisation ``pad_value`` stands for.
        mean (tuple[float, float, float], optional): Subtracted per channel (after ``bgr_to_rgb``).
        std (tuple[float, float, float], optional): Divides per channel.
        bgr_to_rgb (bool): Reverse the channels of the (BGR) decoded image.
        padded_in_pipeline (bool): The pipeline has a ``Pad`` or
            ``RectLetterbox`` step, which makes mmdet record the padded size as
            ``img_shape`` (box clipping of some heads reads it).
        interpolation (str): The ``Resize`` interpolation (mmcv's names). Defaults to 'bilinear'.
        letterbox (RectLetterbox, optional): The pipeline's centred letterbox, if it has one.
        size_divisor (int): The data preprocessor's ``pad_size_divisor``. Defaults to 1.
    """
    input_size: Optional[Tuple[int, int]]
    resize_scale: Tuple[int, int]
    keep_ratio: bool = True
    pad_pixel: Tuple[float, float, float] = (0.0, 0.0, 0.0)
    mean: Optional[Tuple[float, float, float]] = None
    std: Optional[Tuple[float, float, float]] = None
    bgr_to_rgb: bool = False
    padded_in_pipeline: bool = False
    interpolation: str = 'bilinear'
    letterbox: Optional[RectLetterbox] = None
    size_divisor: int = 1

    @classmethod
    def from_config(cls, cfg: Config, input_size: Optional[Sequence[int]] = None) -> 'PreprocessSettings':
        """Read the test pipeline's ``Resize`` / ``Pad`` / ``RectLetterbox`` and the model's ``data_preprocessor``.

        Args:
            cfg (Config): The detector's config.
            input_size (Sequence[int], optional): (height, width), or one side
                for a square, to resize to (fit, or stretch without
                ``keep_ratio``); defaults to the test ``Resize`` scale (with a
                ``RectLetterbox``: each image's own rectangle, as the
                pipeline). The network input is it rounded up to the
                preprocessor's ``pad_size_divisor``, as mmdet pads.
        """
        pipeline = dataset_pipeline(cfg.test_dataloader.dataset)
        resize = pipeline_step(pipeline, 'Resize')
        if resize is None or 'scale' not in resize:
            raise KeyError('the test pipeline has no Resize step with a scale; pass input_size=(H, W)')
        preprocessor = cfg.model.get('data_preprocessor', {})
        mean, std = preprocessor.get('mean'), preprocessor.get('std')
        bgr_to_rgb = preprocessor.get('bgr_to_rgb', False)
        divisor = preprocessor.get('pad_size_divisor', 1)
        pad = pipeline_step(pipeline, 'Pad')
        letterbox_step = pipeline_step(pipeline, 'RectLetterbox')
        letterbox = None
        if letterbox_step is not None:
            letterbox = RectLetterbox(**{key: value for key, value in letterbox_step.items() if key != 'type'})
            pad_pixel = (letterbox.pad_val, ) * 3
        elif pad is not None:
            pad_value = pad.get('pad_val', 0)
            if isinstance(pad_value, dict):
                pad_value = pad_value.get('img', 0)
            pad_pixel = tuple(pad_value) if isinstance(pad_value, (list, tuple)) else (pad_value, ) * 3
        else:
            # The preprocessor pads the normalised batch with pad_value: in pixels, mean + pad_value * std.
            value = preprocessor.get('pad_value', 0)
            pad_pixel = tuple(m + value * s for m, s in zip(mean or (0, 0, 0), std or (1, 1, 1)))
            if bgr_to_rgb:
                pad_pixel = pad_pixel[::-1]
        if input_size is None:
            scale_w, scale_h = resize['scale']
            resize_scale = (scale_w, scale_h)
            fixed_size = None if letterbox is not None else (round_up(scale_h, divisor), round_up(scale_w, divisor))
        else:
            height, width = (input_size[0], input_size[0]) if len(input_size) == 1 else input_size[:2]
            resize_scale = (width, height)
            fixed_size = (round_up(height, divisor), round_up(width, divisor))
        return cls(input_size=None if fixed_size is None else (int(fixed_size[0]), int(fixed_size[1])),
                   resize_scale=tuple(resize_scale), keep_ratio=resize.get('keep_ratio', False),
                   pad_pixel=tuple(float(v) for v in pad_pixel),
                   mean=tuple(mean) if mean is not None else None, std=tuple(std) if std is not None else None,
                   bgr_to_rgb=bgr_to_rgb, padded_in_pipeline=pad is not None or letterbox is not None,
                   interpolation=resize.get('interpolation', 'bilinear'), letterbox=letterbox, size_divisor=divisor)

    def canvas_shape(self, height: int, width: int) -> Tuple[int, int]:
        """(height, width) of the padded input of an original ``height x width`` image."""
        if self.input_size is not None:
            return self.input_size
        return self.letterbox.padded_shape(height, width)


def per_channel(values: Sequence[float], device: Optional[torch.device] = None) -> torch.Tensor:
    """Three per-channel values as a (1, 3, 1, 1) float32 tensor, to broadcast over a batch."""
    return torch.tensor(values, dtype=torch.float32, device=device).view(1, 3, 1, 1)


def read_image(image: ImageInput) -> np.ndarray:
    """A path or an HWC uint8 BGR array (as ``mmcv.imread`` gives) -> the array; clear errors otherwise."""
    if isinstance(image, str):
        try:
            decoded = mmcv.imread(image)
        except (OSError, ValueError) as err:
            raise ValueError(f'{image}: cannot read the image ({err})') from err
        if decoded is None:
            raise ValueError(f'{image}: not a readable image (missing, empty or corrupt file)')
        return decoded
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        got = f'{type(image).__name__} {getattr(image, "shape", "")} {getattr(image, "dtype", "")}'.strip()
        raise ValueError(f'expected an image path or an HxWx3 uint8 BGR array, got {got}')
    # torch.from_numpy refuses negative strides (e.g. image[..., ::-1]); a no-op for a contiguous array.
    return np.ascontiguousarray(image)


class BatchPreprocessor:
    """Decoded images -> (normalised batch on the device, per-image metainfo).

    Args:
        settings (PreprocessSettings): From the config.
        device (torch.device): Where the batch goes.
    """

    def __init__(self, settings: PreprocessSettings, device: torch.device) -> None:
        self.settings = settings
        self.device = device
        self._pad_pixel = per_channel(settings.pad_pixel, device)
        self._mean = per_channel(settings.mean, device) if settings.mean is not None else None
        self._std = per_channel(settings.std, device) if settings.std is not None else None

    def resized_shape(self, height: int, width: int) -> Tuple[int, int]:
        """(height, width) of an image after the resize, as mmcv's ``Resize`` computes it."""
        scale_w, scale_h = self.settings.resize_scale
        if not self.settings.keep_ratio:
            return scale_h, scale_w
        new_w, new_h = mmcv.rescale_size((width, height), (scale_w, scale_h))
        return new_h, new_w

    def upload(self, arrays: Sequence[np.ndarray]) -> torch.Tensor:
        """Equal-sized HWC uint8 arrays -> one (N, H, W, C) uint8 tensor on the device.

        To a GPU, each image is copied into pinned host memory and its transfer
        queued at once: the transfers run asynchronously, overlapping the staging
        of the next image, and the host never waits for the device (from pageable
        memory the driver stages the data itself, and returns only when it has).
        On the CPU, one stacking copy.
        """
        if self.device.type != 'cuda':
            return torch.from_numpy(np.stack(arrays))
        shape = (len(arrays), *arrays[0].shape)
        staged = torch.empty(shape, dtype=torch.uint8, pin_memory=True)
        uploaded = torch.empty(shape, dtype=torch.uint8, device=self.device)
        # The pinned blocks return to torch's host cache only once their copies are done.
        for index, array in enumerate(arrays):
            staged[index].copy_(torch.from_numpy(array))
            uploaded[index].copy_(staged[index], non_blocking=True)
        return uploaded

    def __call__(self, images: Sequence[ImageInput]) -> Tuple[torch.Tensor, List[dict]]:
        """Pre-process a batch: :meth:`letterbox`, then :meth:`normalise`.

        Args:
            images (Sequence[str | np.ndarray]): Paths or HWC uint8 BGR arrays, any sizes.

        Returns:
            tuple[Tensor, list[dict]]: The (B, 3, H, W) float32 batch and, per image,
            ``ori_shape``, ``img_shape``, ``pad_shape``, ``batch_input_shape``,
            ``scale_factor`` (w, h) and, with a letterbox, ``pad_param`` (top,
            bottom, left, right) as mmdet's pipeline records them.
        """
        batch, metas = self.letterbox(images)
        return self.normalise(batch), metas

    def letterbox(self, images: Sequence[ImageInput]) -> Tuple[torch.Tensor, List[dict]]:
        """The steps before normalisation: the (B, 3, H, W) float32 batch of resized, padded BGR pixels
        (0-255) on the device, and the metas of :meth:`__call__`."""
        if len(images) == 0:
            raise ValueError('no images to pre-process')
        arrays = [read_image(image) for image in images]
        settings = self.settings
        canvases = [settings.canvas_shape(*array.shape[:2]) for array in arrays]
        divisor = settings.size_divisor
        input_h = round_up(max(height for height, _ in canvases), divisor)
        input_w = round_up(max(width for _, width in canvases), divisor)
        batch = self._pad_pixel.expand(len(arrays), 3, input_h, input_w).clone()
        metas = []
        same_shape = all(array.shape == arrays[0].shape for array in arrays)
        # One upload and one resize for a batch of equal-sized images (the serving case). Slices, not
        # lists of indices: a list would be copied to the device and wait for it.
        groups = [(0, len(arrays))] if same_shape else [(index, index + 1) for index in range(len(arrays))]
        for start, stop in groups:
            height, width = arrays[start].shape[:2]
            canvas_h, canvas_w = canvases[start]
            new_h, new_w = self.resized_shape(height, width)
            if new_h > canvas_h or new_w > canvas_w:
                raise ValueError(f'an image resized to {new_h}x{new_w} does not fit the input size '
                                 f'{canvas_h}x{canvas_w}; pass a larger input_size')
            # Centred as RectLetterbox pads (the odd pixel at the bottom / right), else at the top left.
            top, left = ((canvas_h - new_h) // 2, (canvas_w - new_w) // 2) if settings.letterbox else (0, 0)
            batch[start:stop, :, top:top + new_h, left:left + new_w] = self.resize(arrays[start:stop], new_h, new_w)
            img_shape = (canvas_h, canvas_w) if settings.padded_in_pipeline else (new_h, new_w)
            meta = dict(ori_shape=(height, width), img_shape=img_shape, pad_shape=(canvas_h, canvas_w),
                        batch_input_shape=(input_h, input_w), scale_factor=(new_w / width, new_h / height))
            if settings.letterbox:
                meta['pad_param'] = np.array([top, canvas_h - new_h - top, left, canvas_w - new_w - left],
                                             dtype=np.float32)
            metas += [dict(meta) for _ in range(start, stop)]
        return batch, metas

    def normalise(self, batch: torch.Tensor) -> torch.Tensor:
        """Letterboxed BGR pixels -> the network's input, as the config's data preprocessor: the channels
        reversed with ``bgr_to_rgb``, then ``(x - mean) / std``."""
        if self.settings.bgr_to_rgb:
            batch = batch.flip(1)
        if self._mean is not None:
            batch = (batch - self._mean) / self._std
        return batch

    def resize(self, arrays: Sequence[np.ndarray], new_h: int, new_w: int) -> torch.Tensor:
        """Equal-sized images -> (N, 3, new_h, new_w) float32 on the device, as the pipeline's ``Resize``."""
        height, width = arrays[0].shape[:2]
        if (new_h, new_w) != (height, width) and self.settings.interpolation != 'bilinear':
            # No device kernel is OpenCV's INTER_AREA (torch's 'area' is adaptive pooling): mmcv on the host.
            arrays = [mmcv.imresize(array, (new_w, new_h), interpolation=self.settings.interpolation)
                      for array in arrays]
        pixels = self.upload(arrays).permute(0, 3, 1, 2).float()
        if pixels.shape[2:] != (new_h, new_w):
            pixels = F.interpolate(pixels, size=(new_h, new_w), mode='bilinear', align_corners=False)
            # OpenCV rounds the resized uint8 image.
            pixels = pixels.round_().clamp_(0, 255)
        return pixels
