"""Detection on image files, folders and videos: drawn boxes and one JSON of detections (``tools/infer.py``).

    from parnet_det.apis.inferencer import MediaInferencer, load_predictor
    predict, dataset_meta = load_predictor('configs/yolo_parnet_xl_coco.py', 'epoch_300.pth', 'cuda:0')
    report = MediaInferencer(predict, dataset_meta, 'out/')(['my_photos/', 'street.mp4'])

Single-stage detectors run through :class:`~parnet_det.inference.DetectorEngine` (its fast
paths apply); any other detector (two-stage) through mmdet's
``inference_detector``, image by image, built by :func:`~parnet_det.models.build_detector` (strict).
"""
import json
import os
import os.path as osp
import sys
from dataclasses import asdict, dataclass, field, replace
from typing import Callable, List, Optional, Sequence, Tuple

import cv2
import mmcv
import numpy as np
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.utils import ProgressBar

from mmdet.apis import inference_detector
from mmdet.models.detectors import SingleStageDetector
from mmdet.registry import DATASETS, MODELS
from mmdet.structures import DetDataSample
from mmdet.visualization import DetLocalVisualizer

from ..inference import BatchPreprocessor, InferenceOptions, VideoFrames, is_video, list_media, read_image
from ..models.builder import build_detector
from ..utils.config import load_config
from ..utils.fileio import atomic_write
from .inference import init_detector_engine

# Decoded HWC uint8 BGR images in, one DetDataSample each out (boxes in the images' pixels).
Predictor = Callable[[List[np.ndarray]], List[DetDataSample]]


def dataset_meta_for(cfg: Config, model) -> dict:
    """Class names (and palette) for drawing: the checkpoint's, else those of the config's test dataset."""
    # mmengine saves the training data's metainfo as the checkpoint's meta.dataset_meta; both loaders keep it here.
    if getattr(model, 'dataset_meta', None):
        return dict(model.dataset_meta)
    # As mmdet's init_detector: the dataset built without reading its annotations.
    return dict(DATASETS.build(dict(cfg.test_dataloader.dataset, lazy_init=True)).metainfo)


def load_predictor(config: str, checkpoint: str, device: str = 'cuda:0', cfg_options: Optional[dict] = None,
                   precision: str = 'fp32', fast_paths: str = 'eager') -> Tuple[Predictor, dict]:
    """A detector ready to predict, and its classes.

    Args:
        config (str): The detector's config.
        checkpoint (str): Its weights.
        device (str): Where it runs. Defaults to 'cuda:0'.
        cfg_options (dict, optional): Overrides, as ``--cfg-options``.
        precision (str): The engine's precision (single-stage detectors only). Defaults to 'fp32'.
        fast_paths (str): The engine's fast paths joined with '+' (see
            :meth:`~parnet_det.inference.InferenceOptions.from_variant`; single-stage detectors only).
            Defaults to 'eager'.

    Returns:
        tuple[Callable, dict]: The predictor (see :data:`Predictor`) and the dataset metainfo (``classes``, ...).
    """
    cfg = load_config(config, cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    options = InferenceOptions.from_variant(fast_paths, precision)
    if issubclass(MODELS.get(cfg.model.type), SingleStageDetector):
        engine = init_detector_engine(cfg, checkpoint, device, **asdict(options))
        settings = engine.preprocess.settings
        if settings.keep_ratio and settings.input_size[0] != settings.input_size[1]:
            # Resized to fit a non-square scale (e.g. 1333 x 800), a portrait image is taller than the
            # landscape input: a square canvas holds both (the resize stays the config's).
            side = max(settings.input_size)
            engine.preprocess = BatchPreprocessor(replace(settings, input_size=(side, side)), engine.device)
        return engine, dataset_meta_for(cfg, engine.model)
    if options != InferenceOptions():
        raise ValueError(f'{cfg.model.type} runs through mmdet (the engine runs single-stage detectors): '
                         'precision and fast paths do not apply; leave them out')
    # The one build function, strict: mmdet's init_detector would go on with random weights on a mismatch.
    model = build_detector(cfg, checkpoint, device)
    return (lambda images: inference_detector(model, images)), dataset_meta_for(cfg, model)


class DetectionPainter:
    """Draws predicted boxes, class names and scores on images, with mmdet's ``DetLocalVisualizer``.

    Args:
        dataset_meta (dict): ``classes`` (and ``palette``) of the detector.
        score_thr (float): Boxes scoring at most this are not drawn.
    """

    def __init__(self, dataset_meta: dict, score_thr: float) -> None:
        self.visualizer = DetLocalVisualizer(name='parnet_det_painter')
        self.visualizer.dataset_meta = dataset_meta
        self.score_thr = score_thr

    def __call__(self, image: np.ndarray, sample: DetDataSample) -> np.ndarray:
        """``image`` (HWC uint8 BGR) with ``sample``'s predictions drawn, BGR."""
        self.visualizer.add_datasample('image', mmcv.bgr2rgb(image), sample, draw_gt=False,
                                       pred_score_thr=self.score_thr)
        return mmcv.rgb2bgr(self.visualizer.get_image())


def coco_records(sample: DetDataSample, image_id: int, file_name: str, classes: Sequence[str], score_thr: float,
                 frame: Optional[int] = None) -> List[dict]:
    """One image's detections scoring above ``score_thr`` in COCO's results format (``bbox`` as x, y, w, h),
    with the file name (and the frame of a video), ``category_id`` the model's label (0-based) and its name.
    """
    instances = sample.pred_instances.cpu()
    instances = instances[instances.scores > score_thr]
    where = dict(image_id=image_id, file_name=file_name) if frame is None else dict(
        image_id=image_id, file_name=file_name, frame=frame)
    records = []
    for (x1, y1, x2, y2), score, label in zip(instances.bboxes.tolist(), instances.scores.tolist(),
                                              instances.labels.tolist()):
        name = classes[label] if label < len(classes) else f'class {label}'
        records.append(dict(where, category_id=label, category=name, bbox=[x1, y1, x2 - x1, y2 - y1], score=score))
    return records


@dataclass
class InferenceReport:
    """What a run produced: the detections, the number of images and frames detected in (their
    ``image_id`` counts them), the drawn files, the inputs that failed and why."""
    records: List[dict] = field(default_factory=list)
    images: int = 0
    drawn: List[str] = field(default_factory=list)
    failed: List[Tuple[str, str]] = field(default_factory=list)

    def skip(self, path: str, reason: str) -> None:
        """Record ``path`` as failed, and say so now (the run goes on)."""
        self.failed.append((path, reason))
        print(f'\nskipped {reason if path in reason else f"{path}: {reason}"}', file=sys.stderr, flush=True)


class MediaInferencer:
    """Detects objects in image files, folders and videos; writes them drawn, and one JSON of detections.

    Images go through the predictor ``batch_size`` at a time and are written
    under ``out_dir`` with their names (a folder's files under the folder's
    name); a video's frames likewise, written as ``<name>.mp4``; the
    detections of all, in COCO's results format with file names (see
    :func:`coco_records`), to ``out_dir/detections.json``. An input that
    cannot be read is reported (on stderr, and in the report) and skipped.

    Args:
        predict (Callable): From :func:`load_predictor`.
        dataset_meta (dict): Its classes.
        out_dir (str): Where the outputs go.
        score_thr (float): Detections scoring at most this are neither drawn nor recorded. Defaults to 0.3.
        batch_size (int): Images or frames per call of the predictor. Defaults to 1.
    """

    def __init__(self, predict: Predictor, dataset_meta: dict, out_dir: str, score_thr: float = 0.3,
                 batch_size: int = 1) -> None:
        self.predict = predict
        self.classes = tuple(dataset_meta.get('classes', ()))
        self.paint = DetectionPainter(dataset_meta, score_thr)
        self.out_dir = out_dir
        self.score_thr = score_thr
        self.batch_size = batch_size

    def __call__(self, paths: Sequence[str]) -> InferenceReport:
        """Detect in ``paths`` (files and folders); returns the report after writing the JSON."""
        media = list_media(paths)
        report = InferenceReport()
        pending: List[Tuple[str, str, np.ndarray]] = []
        progress = ProgressBar(len(media))
        for path, name in media:
            try:
                if is_video(path):
                    self._detect_images(pending, report)  # images first: records stay in input order
                    pending = []
                    self._detect_video(path, name, report)
                else:
                    pending.append((path, name, read_image(path)))
            except ValueError as err:
                report.skip(path, str(err))
            if len(pending) == self.batch_size:
                self._detect_images(pending, report)
                pending = []
            progress.update()
        self._detect_images(pending, report)
        sys.stdout.write('\n')
        os.makedirs(self.out_dir, exist_ok=True)
        with atomic_write(osp.join(self.out_dir, 'detections.json'), 'w') as file:
            json.dump(report.records, file)
        return report

    def _out_path(self, name: str) -> str:
        path = osp.join(self.out_dir, name)
        os.makedirs(osp.dirname(path), exist_ok=True)
        return path

    def _detect_images(self, batch: List[Tuple[str, str, np.ndarray]], report: InferenceReport) -> None:
        if not batch:
            return
        try:
            samples = self.predict([image for _, _, image in batch])
        except ValueError as err:  # e.g. an image the engine's fixed input size cannot hold
            for path, _, _ in batch:
                report.skip(path, str(err))
            return
        for (path, name, image), sample in zip(batch, samples):
            report.records += coco_records(sample, report.images, path, self.classes, self.score_thr)
            report.images += 1
            out_file = self._out_path(name)
            mmcv.imwrite(self.paint(image, sample), out_file)
            report.drawn.append(out_file)

    def _detect_video(self, path: str, name: str, report: InferenceReport) -> None:
        frames = VideoFrames(path)
        out_file = self._out_path(osp.splitext(name)[0] + '.mp4')
        writer, count = None, 0
        try:
            for batch in frames.batches(self.batch_size):
                for frame, sample in zip(batch, self.predict(batch)):
                    report.records += coco_records(sample, report.images, path, self.classes, self.score_thr,
                                                   frame=count)
                    report.images += 1
                    if writer is None:
                        writer = cv2.VideoWriter(out_file, cv2.VideoWriter_fourcc(*'mp4v'), frames.fps,
                                                 (frame.shape[1], frame.shape[0]))
                        if not writer.isOpened():
                            raise ValueError(f'{path}: OpenCV cannot write {out_file} (no mp4v encoder)')
                    writer.write(self.paint(frame, sample))
                    count += 1
        finally:
            if writer is not None:
                writer.release()
        if writer is None:
            raise ValueError(f'{path}: a video without a readable frame')
        report.drawn.append(out_file)
