"""tools/infer.py: a tiny trained checkpoint on a folder of generated images (one corrupt) and a generated
video; a two-stage config through mmdet's inference API."""
import glob
import json
import os.path as osp
import shutil
import subprocess
import sys

import cv2
import mmcv
import numpy as np
import pytest
import torch
from mmengine.structures import InstanceData

from mmdet.apis import inference_detector, init_detector
from mmdet.registry import MODELS

from parnet_det.apis import init_detector_engine, load_config, load_predictor

from ..test_inference.test_engine import assert_same_detections
from .test_train_test_end_to_end import CONFIG, ROOT, data_options, run_tool

# 64 px input (the images are 128 px: boxes are scaled back), every scored box kept: the model has
# trained for one epoch, its scores are far below the config's threshold.
YOLO_OPTIONS = {'test_dataloader.dataset.pipeline.1.scale': (64, 64), 'model.test_cfg.score_thr': 0.0}
TWO_STAGE_CONFIG = 'configs/parnet_in_mmdet/faster-rcnn_parnet_s_fpn_1x_coco.py'
TWO_STAGE_OPTIONS = {'test_dataloader.dataset.pipeline.1.scale': (128, 128), 'model.test_cfg.rcnn.score_thr': 0.0}


def cli_options(options):
    return ['--cfg-options'] + [f'{key}={value}'.replace(' ', '') for key, value in options.items()]


def infer(*args):
    return subprocess.run([sys.executable, 'tools/infer.py', *args, '--device', 'cpu'], cwd=ROOT,
                          capture_output=True, text=True)


def detections_by_image(records):
    """JSON records -> {(file_name, frame): InstanceData}, boxes back to (x1, y1, x2, y2)."""
    grouped = {}
    for record in records:
        grouped.setdefault((record['file_name'], record.get('frame')), []).append(record)
    return {key: InstanceData(
        bboxes=torch.tensor([[x, y, x + w, y + h] for x, y, w, h in (r['bbox'] for r in group)]),
        scores=torch.tensor([r['score'] for r in group]), labels=torch.tensor([r['category_id'] for r in group]))
        for key, group in grouped.items()}


@pytest.fixture(scope='module')
def checkpoint(tiny_coco, tmp_path_factory):
    work_dir = str(tmp_path_factory.mktemp('infer_train'))
    run_tool('tools/train.py', CONFIG, '--work-dir', work_dir, '--cfg-options',
             *data_options(tiny_coco['data_root'], size=64), 'train_cfg.max_epochs=1', 'train_dataloader.batch_size=4')
    return osp.join(work_dir, 'epoch_1.pth')


@pytest.fixture
def photos(tiny_coco, tmp_path):
    """A folder of the generated images (one in a sub-folder, a corrupt image, a corrupt video) and a
    5-frame video."""
    images = jpegs(osp.join(tiny_coco['data_root'], 'val'))
    folder = tmp_path / 'photos'
    (folder / 'nested').mkdir(parents=True)
    for image in images[:2]:
        shutil.copy(image, folder)
    shutil.copy(images[2], folder / 'nested' / 'third.jpg')
    (folder / 'corrupt.jpg').write_bytes(b'not a jpeg')
    (folder / 'broken.mp4').write_bytes(b'not a video')
    video = str(tmp_path / 'clip.avi')
    writer = cv2.VideoWriter(video, cv2.VideoWriter_fourcc(*'MJPG'), 5, (128, 128))
    for index in range(5):
        writer.write(mmcv.imread(images[index % len(images)]))
    writer.release()
    return str(folder), video


def jpegs(folder):
    return sorted(glob.glob(osp.join(folder, '*.jpg')))


def video_frames(path):
    capture = cv2.VideoCapture(path)
    frames = []
    ok, frame = capture.read()
    while ok:
        frames.append(frame)
        ok, frame = capture.read()
    return frames


@pytest.mark.slow
def test_infer_draws_and_writes_the_engine_detections(checkpoint, photos, tmp_path, tiny_coco):
    folder, video = photos
    out_dir = str(tmp_path / 'out')
    result = infer(CONFIG, checkpoint, folder, video, '--out-dir', out_dir, '--score-thr', '0', '--batch-size', '2',
                   *cli_options(YOLO_OPTIONS))
    # The corrupt files are named, skipped, and make the exit status say so; everything else is done.
    assert result.returncode == 1, result.stderr[-3000:]
    assert f'skipped {folder}/corrupt.jpg: not a readable image' in result.stderr
    assert f'skipped {folder}/broken.mp4: not a readable video' in result.stderr
    assert result.stderr.strip().endswith(f'2 input(s) skipped: {folder}/broken.mp4, {folder}/corrupt.jpg')
    # The tool's own lines, not a screen of third-party warnings (parnet_det.utils.warnings_filter).
    assert 'Warning' not in result.stderr, result.stderr
    images = [image for image in jpegs(folder) if not image.endswith('corrupt.jpg')] + [f'{folder}/nested/third.jpg']
    for image in images:
        drawn = mmcv.imread(osp.join(out_dir, 'photos', osp.relpath(image, folder)))
        assert drawn.shape == mmcv.imread(image).shape
        assert (drawn != mmcv.imread(image)).any()  # boxes drawn
    assert not osp.exists(osp.join(out_dir, 'photos', 'corrupt.jpg'))
    assert not osp.exists(osp.join(out_dir, 'photos', 'broken.mp4'))
    frames = video_frames(video)
    assert len(video_frames(osp.join(out_dir, 'clip.mp4'))) == len(frames) == 5

    with open(osp.join(out_dir, 'detections.json')) as f:
        records = json.load(f)
    assert {r['category'] for r in records} <= set(tiny_coco['classes'])
    assert sorted({r['image_id'] for r in records}) == list(range(len(images) + len(frames)))
    written = detections_by_image(records)
    engine = init_detector_engine(CONFIG, checkpoint, 'cpu', cfg_options=YOLO_OPTIONS)
    expected = {(image, None): engine([image])[0] for image in images}
    expected.update({(video, index): engine([frame])[0] for index, frame in enumerate(frames)})
    assert set(written) == set(expected)
    for key, sample in expected.items():
        assert_same_detections(written[key], sample.pred_instances, box_atol=1e-3, score_atol=1e-5)


@pytest.mark.slow
def test_two_stage_config_runs_through_mmdet(tiny_coco, tmp_path):
    cfg = load_config(TWO_STAGE_CONFIG)
    torch.manual_seed(0)
    checkpoint = str(tmp_path / 'faster_rcnn.pth')
    torch.save(dict(state_dict=MODELS.build(cfg.model).state_dict(), meta={}), checkpoint)
    image = jpegs(osp.join(tiny_coco['data_root'], 'val'))[0]
    out_dir = str(tmp_path / 'out')
    result = infer(TWO_STAGE_CONFIG, checkpoint, image, '--out-dir', out_dir, '--score-thr', '0',
                   *cli_options(TWO_STAGE_OPTIONS))
    assert result.returncode == 0, result.stderr[-3000:]
    assert osp.isfile(osp.join(out_dir, osp.basename(image)))
    with open(osp.join(out_dir, 'detections.json')) as f:
        written = detections_by_image(json.load(f))
    model = init_detector(load_config(TWO_STAGE_CONFIG, TWO_STAGE_OPTIONS), checkpoint, device='cpu')
    expected = inference_detector(model, [mmcv.imread(image)])[0].pred_instances
    assert_same_detections(written[(image, None)], expected, box_atol=1e-3, score_atol=1e-5)
    # Precision and fast paths are the engine's: refused for a detector that mmdet runs.
    refused = infer(TWO_STAGE_CONFIG, checkpoint, image, '--out-dir', out_dir, '--fast-path', 'channels_last')
    assert refused.returncode != 0 and 'precision and fast paths do not apply' in refused.stderr


def test_portrait_images_fit_a_non_square_keep_ratio_input():
    """RetinaNet's keep-ratio resize to scale (160, 128), long and short side: a 96 x 64 (h x w) portrait
    image becomes 160 x 107, taller than the config's 128-row input; a square canvas holds it and a
    landscape one (107 x 160), each resized as mmdet resizes it."""
    predict, _ = load_predictor('tests/data/configs/retinanet_parnet_tiny.py', None, 'cpu',
                                {'test_dataloader.dataset.pipeline.1.scale': (160, 128)})
    portrait, landscape = predict([np.zeros((96, 64, 3), np.uint8), np.zeros((64, 96, 3), np.uint8)])
    assert predict.input_size == (160, 160)
    assert portrait.img_shape == (160, 107) and landscape.img_shape == (107, 160)
