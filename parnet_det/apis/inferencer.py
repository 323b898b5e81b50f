"""Detection on image files, folders and videos: drawn copies and the detections as JSON (``tools/infer.py``).

    from parnet_det.apis.inferencer import MediaInferencer, load_predictor
    predict, dataset_meta = load_predictor('configs/yolo_parnet_xl_coco.py', 'epoch_300.pth', 'cuda:0')
    report = MediaInferencer(predict, dataset_meta, 'out/')(['my_photos/', 'street.mp4'])

Single-stage detectors run through :class:`~parnet_det.inference.DetectorEngine` (its fast
paths apply); any other detector (two-stage) through mmdet's
``inference_detector``, image by image, built by :func:`~parnet_det.models.build_detector` (strict).
No input is ever written to: outputs go only into an empty ``out_dir``, under unique names.
"""
import contextlib
import copy
import logging
import os
import os.path as osp
import sys
from dataclasses import asdict, dataclass, field, replace
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np
from mmengine.config import Config
from mmengine.logging import print_log
from mmengine.structures import InstanceData
from mmengine.utils import ProgressBar

from mmdet.apis import inference_detector
from mmdet.models.detectors import SingleStageDetector
from mmdet.registry import DATASETS
from mmdet.structures import DetDataSample

from ..inference import (
    BatchPreprocessor,
    InferenceOptions,
    VideoFrames,
    check_outputs,
    is_video,
    list_media,
    read_image,
)
from ..models.builder import build_detector, model_class
from ..utils.config import load_config
from ..utils.fileio import atomic_write, check_new_or_empty_dir, create_temporary, publish
from ..utils.work_dir_lock import work_dir_lock
from .inference import init_detector_engine, warn_if_classes_differ
from .painter import DetectionPainter
from .results import CocoIds, DetectionLog, coco_records, shown_detections

# Decoded HWC uint8 BGR images in, one DetDataSample each out (boxes in the images' pixels).
Predictor = Callable[[List[np.ndarray]], List[DetDataSample]]


def dataset_meta_for(cfg: Config, model) -> dict:
    """Class names (and palette): the checkpoint's, else those of the config's test dataset.

    The checkpoint's classes are those the model was trained with; where the
    config names others (another list, or another order), the loader has warned
    (:func:`~parnet_det.apis.inference.warn_if_classes_differ`).
    """
    # mmengine saves the training data's metainfo as the checkpoint's meta.dataset_meta; both loaders keep it here.
    if getattr(model, 'dataset_meta', None):
        return dict(model.dataset_meta)
    # As mmdet's init_detector: the dataset built without reading its annotations.
    return dict(DATASETS.build(dict(cfg.test_dataloader.dataset, lazy_init=True)).metainfo)


def lower_score_thresholds(cfg: Config, score_thr: float) -> None:
    """Lower the head's own score threshold (``test_cfg.score_thr``, or ``test_cfg.rcnn.score_thr`` of a
    two-stage detector) to ``score_thr`` where it is higher: it drops detections before the caller sees them."""
    test_cfg = cfg.model.get('test_cfg') or {}
    for stage in (test_cfg, test_cfg.get('rcnn') or {}):
        if stage.get('score_thr', 0) > score_thr:
            stage['score_thr'] = score_thr


def load_predictor(config: Union[str, Config], checkpoint: str, device: str = 'cuda:0',
                   cfg_options: Optional[dict] = None, precision: str = 'fp32', fast_paths: str = 'eager',
                   score_thr: Optional[float] = None) -> Tuple[Predictor, dict]:
    """A detector ready to predict, and its classes.

    Args:
        config (str | Config): The detector's config (a Config is not changed).
        checkpoint (str): Its weights.
        device (str): Where it runs. Defaults to 'cuda:0'.
        cfg_options (dict, optional): Overrides, as ``--cfg-options``.
        precision (str): The engine's precision (single-stage detectors only). Defaults to 'fp32'.
        fast_paths (str): The engine's fast paths joined with '+' (see
            :meth:`~parnet_det.inference.InferenceOptions.from_variant`; single-stage detectors only).
            Defaults to 'eager'.
        score_thr (float, optional): The lowest score the caller keeps: the head's
            own threshold is lowered to it (:func:`lower_score_thresholds`).

    Returns:
        tuple[Callable, dict]: The predictor (see :data:`Predictor`) and the dataset metainfo (``classes``, ...).
    """
    cfg = load_config(config, cfg_options) if isinstance(config, str) else copy.deepcopy(config)
    if cfg_options and not isinstance(config, str):
        cfg.merge_from_dict(cfg_options)
    if score_thr is not None:
        lower_score_thresholds(cfg, score_thr)
    options = InferenceOptions.from_variant(fast_paths, precision)
    if issubclass(model_class(cfg), SingleStageDetector):  # model_class: the config's scope, types checked
        engine = init_detector_engine(cfg, checkpoint, device, **asdict(options))
        settings = engine.preprocess.settings
        if settings.keep_ratio and settings.input_size is not None and settings.input_size[0] != settings.input_size[1]:
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
    warn_if_classes_differ(model)  # the engine's entry point does it for single-stage detectors
    return (lambda images: inference_detector(model, images)), dataset_meta_for(cfg, model)


def plan_outputs(paths: Sequence[str], out_dir: str, ignore: Sequence[str] = ()) -> List[Tuple[str, str]]:
    """The inputs, each with its drawn copy's name in ``out_dir`` (see
    :func:`~parnet_det.inference.list_media`), checked before anything is written
    (:func:`~parnet_det.inference.media.check_outputs`: ``out_dir`` must be new or empty but for ``ignore``)."""
    media = list_media(paths, out_dir)
    check_outputs(media, out_dir, ignore)
    return media


# Held in --out-dir while a run writes there.
OUT_DIR_LOCK = '.infer.lock'


@contextlib.contextmanager
def locked_outputs(paths: Sequence[str], out_dir: str) -> Iterator[List[Tuple[str, str]]]:
    """:func:`plan_outputs` (a running tool's lock file aside), then ``out_dir`` held by this run for the body
    (:func:`~parnet_det.utils.work_dir_lock.work_dir_lock`: a second run of tools/infer.py or
    tools/deploy/infer_runtime.py into it stops at once, naming this one) and checked again once held: a run
    that ended meanwhile may have filled it."""
    media = plan_outputs(paths, out_dir, ignore=[OUT_DIR_LOCK])
    with work_dir_lock(out_dir, OUT_DIR_LOCK, 'inference run', '--out-dir'):
        check_new_or_empty_dir(out_dir, '--out-dir', ignore=[OUT_DIR_LOCK])
        yield media


@dataclass
class InferenceReport:
    """What a run produced: images and frames detected in, detections written, detections dropped as
    not finite (boxes or scores), the drawn files, the inputs that failed and why, the JSON file."""
    images: int = 0
    detections: int = 0
    non_finite: int = 0
    drawn: List[str] = field(default_factory=list)
    failed: List[Tuple[str, str]] = field(default_factory=list)
    json_path: str = ''

    def skip(self, path: str, reason: str) -> None:
        """Record ``path`` as failed, and say so now (the run goes on)."""
        self.failed.append((path, reason))
        print(f'\nskipped {reason if path in reason else f"{path}: {reason}"}', file=sys.stderr, flush=True)


class MediaInferencer:
    """Detects objects in image files, folders and videos; writes drawn copies and the detections.

    Images go through the predictor ``batch_size`` at a time, a video's
    frames likewise. Into ``out_dir`` (new or empty; see :func:`plan_outputs`
    for the names) go each image drawn, each video drawn as ``.mp4``, and the
    detections scoring at least ``score_thr`` (see :mod:`.results`):
    ``detections.jsonl`` line by line as images are done, ``detections.json``
    at the end. Detections with a non-finite box or score are dropped and
    counted. An input that cannot be read is reported (on stderr, and in the
    report) and skipped; so is an image the predictor refuses, alone.

    Args:
        predict (Callable): From :func:`load_predictor`.
        dataset_meta (dict): Its classes (and palette).
        out_dir (str): Where the outputs go.
        score_thr (float): Detections scoring under this are neither drawn nor written. Defaults to 0.3.
        batch_size (int): Images or frames per call of the predictor. Defaults to 1.
        draw (bool): Write the drawn copies. Defaults to True.
        coco_ids (CocoIds, optional): Write the image and category ids of this
            annotation file (every input must be one of its images).
    """

    def __init__(self, predict: Predictor, dataset_meta: dict, out_dir: str, score_thr: float = 0.3,
                 batch_size: int = 1, draw: bool = True, coco_ids: Optional[CocoIds] = None) -> None:
        self.predict = predict
        self.classes = tuple(dataset_meta.get('classes', ()))
        self.paint = DetectionPainter(self.classes, dataset_meta.get('palette')) if draw else None
        self.out_dir = out_dir
        self.score_thr = score_thr
        self.batch_size = batch_size
        self.coco_ids = coco_ids
        self.category_ids = coco_ids.category_ids(self.classes) if coco_ids else None

    def __call__(self, paths: Sequence[str]) -> InferenceReport:
        """Detect in ``paths`` (files and folders); returns the report after writing the JSON."""
        return self.run(plan_outputs(paths, self.out_dir))

    def run(self, media: Sequence[Tuple[str, str]]) -> InferenceReport:
        """Detect in ``media`` from :func:`plan_outputs`."""
        image_ids = self.coco_ids.image_ids([path for path, _ in media]) if self.coco_ids else {}
        report = InferenceReport()
        log = DetectionLog(self.out_dir)
        pending: List[Tuple[str, str, np.ndarray]] = []
        progress = ProgressBar(len(media))
        for path, name in media:
            try:
                if is_video(path):
                    self._detect_images(pending, report, log, image_ids)  # images first: lines stay in input order
                    pending = []
                    self._detect_video(path, name, report, log)
                else:
                    pending.append((path, name, read_image(path)))
            except ValueError as err:
                report.skip(path, str(err))
            if len(pending) == self.batch_size:
                self._detect_images(pending, report, log, image_ids)
                pending = []
            progress.update()
        self._detect_images(pending, report, log, image_ids)
        sys.stdout.write('\n')
        report.json_path = log.close()
        return report

    def _write(self, report: InferenceReport, log: DetectionLog, image: dict, sample: DetDataSample) -> InstanceData:
        """Record ``sample``'s shown detections; returns them."""
        instances, non_finite = shown_detections(sample.pred_instances, self.score_thr)
        records = coco_records(instances, image, self.classes, self.category_ids)
        log.add(image, records)
        report.images += 1
        report.detections += len(records)
        report.non_finite += non_finite
        return instances

    def _detect_images(self, batch: List[Tuple[str, str, np.ndarray]], report: InferenceReport, log: DetectionLog,
                       image_ids: Dict[str, int]) -> None:
        if not batch:
            return
        try:
            samples = self.predict([image for _, _, image in batch])
        except ValueError as err:  # e.g. an image the engine's fixed input size cannot hold
            if len(batch) > 1:  # find it: the others are fine
                for item in batch:
                    self._detect_images([item], report, log, image_ids)
            else:
                report.skip(batch[0][0], str(err))
            return
        for (path, name, image), sample in zip(batch, samples):
            instances = self._write(report, log, dict(image_id=image_ids.get(path, report.images), file_name=path),
                                    sample)
            if self.paint:
                out_file = self._out_path(name)
                ok, encoded = cv2.imencode(osp.splitext(out_file)[1], self.paint(image, instances))
                if not ok:
                    raise ValueError(f'{path}: OpenCV cannot encode {out_file}')
                with atomic_write(out_file, 'wb', overwrite=False) as file:
                    file.write(encoded.tobytes())
                report.drawn.append(out_file)

    def _out_path(self, name: str) -> str:
        path = osp.join(self.out_dir, name)
        os.makedirs(osp.dirname(path), exist_ok=True)
        return path

    def _detect_video(self, path: str, name: str, report: InferenceReport, log: DetectionLog) -> None:
        frames = VideoFrames(path)
        out_file = self._out_path(name) if self.paint else None
        # Written under a hidden name, which keeps the extension OpenCV chooses the container by; created here
        # exclusively, so OpenCV (which opens by name) writes into this new file and through nothing planted.
        tmp_file = None
        if out_file:
            fd, tmp_file = create_temporary(out_file, '.mp4')
            os.close(fd)
        writer, count, complete = None, 0, False
        try:
            for batch in frames.batches(self.batch_size):
                for frame, sample in zip(batch, self.predict(batch)):
                    instances = self._write(report, log, dict(image_id=report.images, file_name=path, frame=count),
                                            sample)
                    count += 1
                    if not self.paint:
                        continue
                    if writer is None:
                        writer = cv2.VideoWriter(tmp_file, cv2.VideoWriter_fourcc(*'mp4v'), frames.fps,
                                                 (frame.shape[1], frame.shape[0]))
                        if not writer.isOpened():
                            raise ValueError(f'{path}: OpenCV cannot write {out_file} (no mp4v encoder)')
                    writer.write(self.paint(frame, instances))
            complete = True
        finally:
            if writer is not None:
                writer.release()
            if writer is not None and complete:
                publish(tmp_file, out_file, overwrite=False)
                report.drawn.append(out_file)
            elif tmp_file is not None:
                with contextlib.suppress(FileNotFoundError):
                    os.remove(tmp_file)
        if count == 0:
            raise ValueError(f'{path}: a video without a readable frame')
        if count < frames.declared_frames:
            print_log(f'{path}: read {count} of the {frames.declared_frames} frames its header declares (cut short or '
                      f'damaged); the detections{" and the drawn video" if out_file else ""} cover those {count}',
                      logger='current', level=logging.WARNING)
