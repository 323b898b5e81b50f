"""tools/infer.py: an untrained tiny detector (scores spread so that it detects) on generated images, a
corrupt image, a corrupt and a generated video; inputs never touched, outputs never lost; strict JSON that
pycocotools evaluates; user errors, bugs and bad images; a two-stage config through mmdet's inference API."""
import glob
import hashlib
import json
import os
import os.path as osp
import shutil
import subprocess
import sys

import cv2
import mmcv
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.structures import InstanceData
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from mmdet.apis import inference_detector, init_detector
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample

from parnet_det.apis import MediaInferencer, init_detector_engine, load_config, load_predictor
from parnet_det.apis.inferencer import lower_score_thresholds
from parnet_det.datasets import synthetic_coco_cfg_options

from ..helpers import load_tool, spread_yolox_scores
from ..test_inference.test_engine import assert_same_detections
from .test_train_test_end_to_end import CONFIG, ROOT

SIZE_64 = {'test_dataloader.dataset.pipeline.1.scale': (64, 64)}
TWO_STAGE_CONFIG = 'configs/parnet_in_mmdet/faster-rcnn_parnet_s_fpn_1x_coco.py'
TWO_STAGE_OPTIONS = {'test_dataloader.dataset.pipeline.1.scale': (128, 128), 'model.test_cfg.rcnn.score_thr': 0.0}

infer_tool = load_tool('infer.py')


def cli_options(options):
    return ['--cfg-options'] + [f'{key}={value}'.replace(' ', '') for key, value in options.items()]


def infer(*args, cwd=None):
    """The tool as a user runs it, in a subprocess."""
    return subprocess.run([sys.executable, osp.join(ROOT, 'tools/infer.py'), *args, '--device', 'cpu'],
                          cwd=cwd or ROOT, capture_output=True, text=True)


def run_main(capsys, *args):
    """tools/infer.py's main in this process: (exit status, stdout, stderr)."""
    try:
        infer_tool.main([*args, '--device', 'cpu'])
        code = 0
    except SystemExit as exit_:  # sys.exit(message): the interpreter would print it and exit with 1
        code = exit_.code if isinstance(exit_.code, int) else 1
        if isinstance(exit_.code, str):
            print(exit_.code, file=sys.stderr)
    out, err = capsys.readouterr()
    return code, out, err


def strict_load(path):
    """The JSON file, refusing NaN and infinities as a strict parser does."""
    def refuse(constant):
        raise ValueError(f'{path}: {constant} is not JSON')
    with open(path) as file:
        return json.load(file, parse_constant=refuse)


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
def checkpoint(tmp_path_factory, tiny_coco):
    """The demo detector untrained, its head's scores spread (hundreds of boxes reach NMS), with the
    dataset's classes in its meta as training would save them."""
    cfg = load_config(CONFIG)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    spread_yolox_scores(model)
    path = str(tmp_path_factory.mktemp('untrained') / 'untrained.pth')
    torch.save(dict(state_dict=model.state_dict(), meta=dict(dataset_meta=dict(classes=tiny_coco['classes']))), path)
    return path


def jpegs(folder):
    return sorted(glob.glob(osp.join(folder, '*.jpg')))


def write_video(path, images, fourcc='MJPG'):
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*fourcc), 5, (128, 128))
    for index in range(5):
        writer.write(mmcv.imread(images[index % len(images)]))
    writer.release()


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
    write_video(video, images)
    return str(folder), video


def video_frames(path):
    capture = cv2.VideoCapture(path)
    frames = []
    ok, frame = capture.read()
    while ok:
        frames.append(frame)
        ok, frame = capture.read()
    return frames


def fingerprints(root):
    """Every file under ``root`` with the md5 of its content."""
    files = [osp.join(folder, name) for folder, _, names in os.walk(root) for name in names]
    return {osp.relpath(file, root): hashlib.md5(open(file, 'rb').read()).hexdigest() for file in files}


def files_under(root):
    return sorted(osp.relpath(osp.join(folder, name), root) for folder, _, names in os.walk(root) for name in names)


def test_infer_draws_and_writes_the_engine_detections(checkpoint, photos, tmp_path, tiny_coco, capsys):
    folder, video = photos
    out_dir = str(tmp_path / 'out')
    code, out, err = run_main(capsys, CONFIG, checkpoint, folder, video, '--out-dir', out_dir, '--score-thr', '0',
                              '--batch-size', '2', *cli_options(SIZE_64))
    # The corrupt files are named, skipped, and make the exit status say so; everything else is done.
    assert code == 1, err[-3000:]
    assert f'skipped {folder}/corrupt.jpg: not a readable image' in err
    assert f'skipped {folder}/broken.mp4: not a readable video' in err
    assert err.strip().endswith(f'2 input(s) skipped: {folder}/broken.mp4, {folder}/corrupt.jpg')
    images = [image for image in jpegs(folder) if not image.endswith('corrupt.jpg')] + [f'{folder}/nested/third.jpg']
    for image in images:
        drawn = mmcv.imread(osp.join(out_dir, 'photos', osp.relpath(image, folder)))
        assert drawn.shape == mmcv.imread(image).shape
        assert (np.abs(drawn.astype(int) - mmcv.imread(image)) > 60).any()  # boxes drawn, not JPEG noise
    frames = video_frames(video)
    assert len(video_frames(osp.join(out_dir, 'clip.mp4'))) == len(frames) == 5
    assert files_under(out_dir) == sorted(['detections.json', 'detections.jsonl', 'clip.mp4', 'photos/nested/third.jpg']
                                          + [osp.join('photos', osp.basename(image)) for image in images[:2]])

    records = strict_load(osp.join(out_dir, 'detections.json'))
    assert f'{len(images) + len(frames)} images and frames, {len(records)} detections scoring at least 0.0' in out
    assert {r['category'] for r in records} == set(tiny_coco['classes'])
    assert sorted({r['image_id'] for r in records}) == list(range(len(images) + len(frames)))
    # detections.jsonl: one line per image or frame, the same detections.
    with open(osp.join(out_dir, 'detections.jsonl')) as file:
        lines = [json.loads(line) for line in file]
    assert [(line['file_name'], line.get('frame')) for line in lines] == [(image, None) for image in sorted(
        images)] + [(video, index) for index in range(5)]
    assert [record for line in lines for record in line['detections']] == records
    written = detections_by_image(records)
    engine = init_detector_engine(CONFIG, checkpoint, 'cpu', cfg_options={**SIZE_64, 'model.test_cfg.score_thr': 0})
    expected = {(image, None): engine([image])[0] for image in images}
    expected.update({(video, index): engine([frame])[0] for index, frame in enumerate(frames)})
    assert set(written) == set(expected)
    for key, sample in expected.items():
        assert_same_detections(written[key], sample.pred_instances, box_atol=1e-3, score_atol=1e-5)


class ScriptedPredictor:
    """Returns given detections for every image; refuses a batch with an image one pixel high (as the
    engine refuses one it cannot resize), counting the calls."""

    def __init__(self, bboxes, scores):
        self.instances = InstanceData(bboxes=torch.tensor(bboxes, dtype=torch.float32),
                                      scores=torch.tensor(scores, dtype=torch.float32),
                                      labels=torch.zeros(len(scores), dtype=torch.long))
        self.calls = 0

    def __call__(self, images):
        self.calls += 1
        if any(image.shape[0] == 1 for image in images):
            raise ValueError('image 0 is too elongated')
        samples = []
        for _ in images:
            sample = DetDataSample()
            sample.pred_instances = self.instances
            samples.append(sample)
        return samples


def test_non_finite_detections_are_dropped_and_counted_and_a_bad_image_is_skipped_alone(tmp_path):
    folder = tmp_path / 'in'
    folder.mkdir()
    for index in range(3):
        cv2.imwrite(str(folder / f'{index}.png'), np.zeros((1 if index == 1 else 40, 60, 3), np.uint8))
    nan, inf = float('nan'), float('inf')
    predict = ScriptedPredictor([[1, 2, 30, 20], [nan, 0, 5, 5], [0, 0, inf, 5], [2, 2, 9, 9], [3, 3, 8, 8]],
                                [0.9, 0.8, 0.7, nan, 0.1])
    report = MediaInferencer(predict, dict(classes=('thing',)), str(tmp_path / 'out'), score_thr=0.5,
                             batch_size=3)([str(folder)])
    # The batch of 3 failed, then each image alone: 1.png is skipped, the others are detected.
    assert predict.calls == 4
    assert report.failed == [(str(folder / '1.png'), 'image 0 is too elongated')]
    assert report.images == 2 and report.detections == 2 and report.non_finite == 2 * 3
    records = strict_load(report.json_path)
    assert [(r['file_name'], r['bbox'], r['score']) for r in records] == [
        (str(folder / name), [1.0, 2.0, 29.0, 18.0], pytest.approx(0.9)) for name in ('0.png', '2.png')]
    assert sorted(os.listdir(tmp_path / 'out' / 'in')) == ['0.png', '2.png']


def test_a_crash_keeps_every_finished_image(tmp_path):
    """detections.jsonl holds each image as soon as it is done; detections.json appears only complete."""
    folder = tmp_path / 'in'
    folder.mkdir()
    for index in range(3):
        cv2.imwrite(str(folder / f'{index}.png'), np.zeros((40, 60, 3), np.uint8))
    predict = ScriptedPredictor([[1, 2, 30, 20]], [0.9])

    def crash_on_the_third(images):
        if predict.calls == 2:
            raise MemoryError('killed')
        return predict(images)
    out_dir = tmp_path / 'out'
    with pytest.raises(MemoryError):
        MediaInferencer(crash_on_the_third, dict(classes=('thing',)), str(out_dir))([str(folder)])
    with open(out_dir / 'detections.jsonl') as file:
        lines = [json.loads(line) for line in file]
    assert [(line['file_name'], len(line['detections'])) for line in lines] == [
        (str(folder / '0.png'), 1), (str(folder / '1.png'), 1)]
    assert not (out_dir / 'detections.json').exists()


def test_user_errors_exit_2_with_one_line_and_bugs_keep_their_traceback(checkpoint, photos, tmp_path, capsys,
                                                                        monkeypatch):
    folder, _ = photos
    code, _, err = run_main(capsys, CONFIG, str(tmp_path / 'missing.pth'), folder, '--out-dir', str(tmp_path / 'o'))
    assert code == 2 and err.startswith('error: ') and err.count('\n') == 1 and 'missing.pth' in err
    assert not osp.exists(tmp_path / 'o')  # nothing written before the error
    code, _, err = run_main(capsys, CONFIG, checkpoint, folder, '--out-dir', str(tmp_path / 'o'), '--score-thr', '-1')
    assert code == 2 and '-1 is not in [0, 1]' in err

    def broken_engine(images):
        raise RuntimeError('an engine bug')
    monkeypatch.setattr(infer_tool, 'load_predictor', lambda *args: (broken_engine, dict(classes=('a',))))
    with pytest.raises(RuntimeError, match='an engine bug'):
        infer_tool.main([CONFIG, checkpoint, folder, '--out-dir', str(tmp_path / 'bug')])


def test_inputs_are_never_written_to(checkpoint, photos, tmp_path, capsys, monkeypatch):
    """The probes of issue 20: --out-dir '.', --out-dir an input's folder, '..' as input, --out-dir inside
    the input folder and a rerun."""
    folder, _ = photos
    config = osp.join(ROOT, CONFIG)  # the test changes directory
    before = fingerprints(tmp_path)
    monkeypatch.chdir(tmp_path)
    for args in (['photos/', '--out-dir', '.'], [f'{folder}/nested/third.jpg', '--out-dir', f'{folder}/nested'],
                 [folder, '--out-dir', folder]):
        code, _, err = run_main(capsys, config, checkpoint, *args)
        assert code == 2 and 'is not empty' in err and 'never writes over files' in err, err
    assert fingerprints(tmp_path) == before

    # '..' as input, from photos/nested, into photos/nested/out: outputs inside out/, named by the folder
    # '..' is (photos), the output folder itself not read.
    monkeypatch.chdir(osp.join(folder, 'nested'))
    code, out, err = run_main(capsys, config, checkpoint, '..', '--out-dir', 'out', *cli_options(SIZE_64))
    assert code == 1 and '3 images and frames' in out, err  # 2 images + third.jpg; the corrupt two skipped
    assert files_under(osp.join(folder, 'nested', 'out')) == sorted(
        ['detections.json', 'detections.jsonl', 'photos/nested/third.jpg']
        + [osp.join('photos', osp.basename(image)) for image in jpegs(folder) if 'corrupt' not in image])
    after = fingerprints(tmp_path)
    assert {name: md5 for name, md5 in after.items() if not name.startswith('photos/nested/out/')} == before
    # A rerun into the same folder refuses; one into another folder inside the input does not read out/
    # (it holds detections.json).
    code, _, err = run_main(capsys, config, checkpoint, '..', '--out-dir', 'out', *cli_options(SIZE_64))
    assert code == 2 and 'out is not empty' in err
    code, out, _ = run_main(capsys, config, checkpoint, '..', '--out-dir', 'out2', *cli_options(SIZE_64))
    assert code == 1 and '3 images and frames' in out
    assert {name: md5 for name, md5 in fingerprints(tmp_path).items() if '/out2/' not in name} == after


def test_outputs_of_equal_names_are_all_kept(tiny_coco, tmp_path):
    """Two folders named val, clip.avi beside clip.mp4: every drawn file is on disk, under its own name."""
    images = jpegs(osp.join(tiny_coco['data_root'], 'val'))
    for parent in ('a', 'b'):
        os.makedirs(tmp_path / parent / 'val')
        shutil.copy(images[0], tmp_path / parent / 'val' / 'x.jpg')
    write_video(str(tmp_path / 'a' / 'clip.avi'), images)
    write_video(str(tmp_path / 'b' / 'clip.mp4'), images, fourcc='mp4v')
    out_dir = str(tmp_path / 'out')
    inputs = [str(tmp_path / 'a' / 'val'), str(tmp_path / 'b' / 'val'), str(tmp_path / 'a' / 'clip.avi'),
              str(tmp_path / 'b' / 'clip.mp4')]
    report = MediaInferencer(ScriptedPredictor([[10, 10, 50, 40]], [0.9]), dict(classes=('thing',)), out_dir)(inputs)
    assert not report.failed and report.images == 2 + 5 + 5
    assert files_under(out_dir) == ['clip-2.mp4', 'clip.mp4', 'detections.json', 'detections.jsonl', 'val-2/x.jpg',
                                    'val/x.jpg']
    assert sorted(osp.relpath(path, out_dir) for path in report.drawn) == ['clip-2.mp4', 'clip.mp4', 'val-2/x.jpg',
                                                                            'val/x.jpg']
    assert len(video_frames(osp.join(out_dir, 'clip.mp4'))) == len(video_frames(osp.join(out_dir, 'clip-2.mp4'))) == 5


@pytest.mark.parametrize('ann_file_given', [True, False])
def test_detections_of_a_coco_split_load_into_pycocotools(checkpoint, tiny_coco, tmp_path, capsys, ann_file_given):
    """With --ann-file, or inputs in the image folder of the config's dataset: the dataset's image and
    category ids, so that COCO.loadRes and COCOeval take the file."""
    data_root = tiny_coco['data_root']
    ann_file = osp.join(data_root, 'annotations/instances_val.json')
    options = cli_options(SIZE_64) + ([] if ann_file_given else synthetic_coco_cfg_options(data_root))
    ann_file_option = ['--ann-file', ann_file] if ann_file_given else []
    out_dir = str(tmp_path / 'out')
    code, out, err = run_main(capsys, CONFIG, checkpoint, osp.join(data_root, 'val'), '--out-dir', out_dir,
                              '--score-thr', '0', '--no-draw', *options, *ann_file_option)
    assert code == 0, err
    assert ann_file_given or f'image and category ids of {ann_file}' in out
    assert files_under(out_dir) == ['detections.json', 'detections.jsonl']  # --no-draw
    coco = COCO(ann_file)
    records = strict_load(osp.join(out_dir, 'detections.json'))
    assert {r['image_id'] for r in records} == set(coco.getImgIds())
    assert records and {r['category_id'] for r in records} <= set(coco.getCatIds())
    for record in records:
        assert coco.imgs[record['image_id']]['file_name'] == osp.basename(record['file_name'])
        assert coco.cats[record['category_id']]['name'] == record['category']
    evaluation = COCOeval(coco, coco.loadRes(osp.join(out_dir, 'detections.json')), 'bbox')
    evaluation.evaluate()
    evaluation.accumulate()
    evaluation.summarize()
    assert np.isfinite(evaluation.stats).all() and evaluation.stats[0] >= 0  # AP computed (untrained: near 0)


def test_ann_file_refuses_inputs_it_does_not_list(checkpoint, photos, tiny_coco, tmp_path, capsys):
    _, video = photos
    ann_file = osp.join(tiny_coco['data_root'], 'annotations/instances_val.json')
    code, _, err = run_main(capsys, CONFIG, checkpoint, video, '--out-dir', str(tmp_path / 'o'), '--ann-file', ann_file)
    assert code == 2 and f'1 input(s) are not images of {ann_file} (e.g. {video})' in err
    assert not osp.exists(tmp_path / 'o')


def test_score_thr_lowers_the_heads_own_threshold():
    cfg = Config(dict(model=dict(test_cfg=dict(score_thr=0.01, rcnn=dict(score_thr=0.05)))))
    lower_score_thresholds(cfg, 0.3)
    assert cfg.model.test_cfg.score_thr == 0.01 and cfg.model.test_cfg.rcnn.score_thr == 0.05
    lower_score_thresholds(cfg, 0.0)
    assert cfg.model.test_cfg.score_thr == 0.0 and cfg.model.test_cfg.rcnn.score_thr == 0.0


def test_score_thr_0_keeps_what_the_head_would_drop(checkpoint, tiny_coco):
    image = jpegs(osp.join(tiny_coco['data_root'], 'val'))[0]
    strict = {**SIZE_64, 'model.test_cfg.score_thr': 0.26}  # the spread scores are about 0.25
    kept = len(init_detector_engine(CONFIG, checkpoint, 'cpu', cfg_options=strict)([image])[0].pred_instances)
    predict, _ = load_predictor(CONFIG, checkpoint, 'cpu', strict, score_thr=0.0)
    assert predict.test_cfg.score_thr == 0.0
    assert len(predict([mmcv.imread(image)])[0].pred_instances) > kept


def test_checkpoint_classes_other_than_the_configs_are_named_and_used(tiny_coco, tmp_path, warnings_logged):
    cfg = load_config(CONFIG)
    torch.manual_seed(0)
    path = str(tmp_path / 'renamed.pth')
    renamed = tuple(reversed(tiny_coco['classes']))
    torch.save(dict(state_dict=MODELS.build(cfg.model).state_dict(), meta=dict(dataset_meta=dict(classes=renamed))),
               path)
    _, dataset_meta = load_predictor(CONFIG, path, 'cpu')
    assert dataset_meta['classes'] == renamed
    named = [w for w in warnings_logged
             if f"the checkpoint's classes {list(renamed)} differ from the config's {list(tiny_coco['classes'])}" in w
             and "the detections' labels are the checkpoint's classes" in w]
    assert len(named) == 1, warnings_logged  # said once, by the engine's entry point


@pytest.mark.slow
def test_two_stage_config_runs_through_mmdet(tiny_coco, tmp_path, capsys):
    cfg = load_config(TWO_STAGE_CONFIG)
    torch.manual_seed(0)
    checkpoint = str(tmp_path / 'faster_rcnn.pth')
    torch.save(dict(state_dict=MODELS.build(cfg.model).state_dict(), meta={}), checkpoint)
    image = jpegs(osp.join(tiny_coco['data_root'], 'val'))[0]
    out_dir = str(tmp_path / 'out')
    result = infer(TWO_STAGE_CONFIG, checkpoint, image, '--out-dir', out_dir, '--score-thr', '0',
                   *cli_options(TWO_STAGE_OPTIONS))
    assert result.returncode == 0, result.stderr[-3000:]
    # The tool's own lines, not a screen of third-party warnings (parnet_det.utils.warnings_filter).
    assert 'Warning' not in result.stderr, result.stderr
    assert osp.isfile(osp.join(out_dir, osp.basename(image)))
    written = detections_by_image(strict_load(osp.join(out_dir, 'detections.json')))
    model = init_detector(load_config(TWO_STAGE_CONFIG, TWO_STAGE_OPTIONS), checkpoint, device='cpu')
    expected = inference_detector(model, [mmcv.imread(image)])[0].pred_instances
    assert_same_detections(written[(image, None)], expected, box_atol=1e-3, score_atol=1e-5)
    # Precision and fast paths are the engine's: refused for a detector that mmdet runs.
    code, _, err = run_main(capsys, TWO_STAGE_CONFIG, checkpoint, image, '--out-dir', str(tmp_path / 'out2'),
                            '--fast-path', 'channels_last')
    assert code == 2 and 'precision and fast paths do not apply' in err


def test_portrait_images_fit_a_non_square_keep_ratio_input():
    """RetinaNet's keep-ratio resize to scale (160, 128), long and short side: a 96 x 64 (h x w) portrait
    image becomes 160 x 107, taller than the config's 128-row input; a square canvas holds it and a
    landscape one (107 x 160), each resized as mmdet resizes it."""
    predict, _ = load_predictor('tests/data/configs/retinanet_parnet_tiny.py', None, 'cpu',
                                {'test_dataloader.dataset.pipeline.1.scale': (160, 128)})
    portrait, landscape = predict([np.zeros((96, 64, 3), np.uint8), np.zeros((64, 96, 3), np.uint8)])
    assert predict.input_size == (160, 160)
    assert portrait.img_shape == (160, 107) and landscape.img_shape == (107, 160)
