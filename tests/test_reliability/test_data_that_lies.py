"""Data that lies (issues 26, 33): an image whose decoded size is not the annotation file's, a video shorter than its
header says, a legacy checkpoint, infer inputs that are not regular files or sit behind symlinks; images that are
symlinks out of the data root, non-finite boxes, NaN darknet weights, an input given twice, a benchmark row that
failed."""
import os

import cv2
import numpy as np
import pytest
import torch
from mmengine.registry import init_default_scope
from mmengine.structures import InstanceData
from mmpretrain.registry import DATASETS as MMPRETRAIN_DATASETS
from PIL import Image

from mmdet.structures import DetDataSample

from parnet_det.apis import MediaInferencer
from parnet_det.convert.darknet_yolov4_csp import (
    DarknetWeightsError,
    conv_layout,
    convert_darknet,
    model_shapes,
    write_darknet_weights,
)
from parnet_det.datasets import CheckedLoadImageFromFile, check_dataset_config, generate_synthetic_imagenet
from parnet_det.datasets.checked_coco import invalid_box_reason
from parnet_det.inference.media import list_media
from parnet_det.utils.checkpoint import LegacyCheckpointError, load_checkpoint_file
from parnet_det.utils.config import load_config

from ..helpers import load_tool
from .helpers import preflight_error
from .test_data_preflight import DEMO_CONFIG, demo_cfg

DARKNET_CONFIG = 'configs/yolov4_csp_coco.py'
TINY_IMAGENET_CONFIG = 'tests/data/configs/parnet_tiny_imagenet_synthetic.py'


def _results(path, width, height):
    return dict(img_path=str(path), width=width, height=height)


def test_an_image_whose_size_is_not_the_annotation_files_is_reported_once_naming_exif(tmp_path, warnings_logged):
    path = tmp_path / 'portrait.jpg'
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated 90 degrees: the decoder turns the 64 x 32 pixels into 32 x 64
    Image.fromarray(np.zeros((32, 64, 3), np.uint8)).save(path, exif=exif)
    load = CheckedLoadImageFromFile()
    for _ in range(3):
        load(_results(path, width=64, height=32))
    reports = [w for w in warnings_logged if str(path) in w]
    assert len(reports) == 1, warnings_logged
    assert ('decoded as 32x64 (w x h), the annotation file says 64x32 (its EXIF orientation tag is 6: the decoder '
            'turned it') in reports[0]


def test_an_image_of_the_declared_size_is_not_reported(tmp_path, warnings_logged):
    path = tmp_path / 'plain.jpg'
    cv2.imwrite(str(path), np.zeros((32, 64, 3), np.uint8))
    CheckedLoadImageFromFile()(_results(path, width=64, height=32))
    assert not [w for w in warnings_logged if str(path) in w]


def _no_detections(images):
    samples = []
    for _ in images:
        sample = DetDataSample()
        sample.pred_instances = InstanceData(bboxes=torch.zeros(0, 4), scores=torch.zeros(0),
                                             labels=torch.zeros(0, dtype=torch.long))
        samples.append(sample)
    return samples


def test_a_video_cut_short_is_reported_with_frames_read_against_declared(tmp_path, warnings_logged):
    video = tmp_path / 'clip.avi'
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*'MJPG'), 5, (64, 64))
    noise = np.random.default_rng(0)  # frames that do not compress to nothing: the cut falls among them
    for _ in range(30):
        writer.write(noise.integers(0, 255, (64, 64, 3), np.uint8))
    writer.release()
    content = video.read_bytes()
    video.write_bytes(content[:len(content) * 2 // 5])  # the header still declares 30 frames
    report = MediaInferencer(_no_detections, dict(classes=('thing',)), str(tmp_path / 'out'), draw=False)(
        [str(video)])
    read = report.images
    assert 0 < read < 30
    assert any(f'{video}: read {read} of the 30 frames its header declares (cut short or damaged)' in w
               for w in warnings_logged), warnings_logged


def test_legacy_checkpoints_load_or_are_named_with_the_fix(tmp_path):
    checkpoint = {'state_dict': {'w': torch.zeros(3)}, 'meta': {}}
    for protocol in (2, 3, 4):
        torch.save(checkpoint, tmp_path / f'p{protocol}.pth', _use_new_zipfile_serialization=False,
                   pickle_protocol=protocol)
    for protocol in (2, 3):  # torch's safe loader reads these
        assert load_checkpoint_file(str(tmp_path / f'p{protocol}.pth'))['state_dict']['w'].shape == (3, )
    with pytest.raises(LegacyCheckpointError) as info:
        load_checkpoint_file(str(tmp_path / 'p4.pth'))
    assert str(info.value).startswith(f'{tmp_path / "p4.pth"} is a PyTorch checkpoint in the legacy (pre-1.6) '
                                      'format with pickle protocol 4, which torch\'s safe loader cannot read: ')


def test_infer_searches_symlinked_subfolders_once_and_reads_regular_files_only(tmp_path):
    photos, elsewhere = tmp_path / 'photos', tmp_path / 'elsewhere'
    photos.mkdir()
    elsewhere.mkdir()
    cv2.imwrite(str(elsewhere / 'a.jpg'), np.zeros((8, 8, 3), np.uint8))
    (photos / 'linked').symlink_to(elsewhere)
    (photos / 'loop').symlink_to(photos)  # a link to an ancestor: not searched again
    os.mkfifo(photos / 'pipe.jpg')
    media = list_media([str(photos)], str(tmp_path / 'out'))
    assert [path for path, _ in media] == [str(photos / 'linked' / 'a.jpg')]
    with pytest.raises(ValueError, match=f'{photos / "pipe.jpg"} is not a regular file'):
        list_media([str(photos / 'pipe.jpg')], str(tmp_path / 'out'))


# Issue 33.

def test_a_listed_image_that_is_a_symlink_out_of_the_data_root_stops_the_preflight(data_root, tmp_path):
    name = sorted(os.listdir(os.path.join(data_root, 'val')))[0]
    secret = tmp_path / 'secret.txt'
    secret.write_text('a system file, not an image')
    image = os.path.join(data_root, 'val', name)
    os.remove(image)
    os.symlink(secret, image)
    error = preflight_error(demo_cfg(data_root))
    assert (f'instances_val.json: 1 of the 4 images it lists are symlinks leading out of the data root {data_root}: '
            f'{[name]} (the first to {secret}); copy the images in, or link the whole data root or image folder '
            'instead') in error


def test_a_data_root_that_is_a_symlink_is_fine(data_root, tmp_path):
    os.symlink(data_root, tmp_path / 'linked')
    check_dataset_config(demo_cfg(str(tmp_path / 'linked')), splits=('train', 'val'))


@pytest.mark.parametrize('box', [[1, 1, float('inf'), 10], [1, 1, float('nan'), 10], [float('-inf'), 1, 5, 5]])
def test_a_non_finite_box_is_skipped_as_non_finite(box):
    ann = dict(bbox=box, category_id=1, area=50)
    assert invalid_box_reason(ann, 64, 64, {1}) == f'non-finite bbox {box!r} (NaN or infinity)'


def test_a_non_finite_area_is_skipped():
    assert invalid_box_reason(dict(bbox=[1, 1, 5, 5], category_id=1, area=float('inf')), 64, 64, {1}) == (
        'missing, non-positive or non-finite area inf')


def test_darknet_weights_with_nan_are_refused_naming_the_tensor(tmp_path):
    cfg = load_config(DARKNET_CONFIG, {'model.backbone.widen_factor': 0.125, 'model.neck.in_channels': [32, 64, 128],
                                       'model.neck.widen_factor': 0.125, 'model.bbox_head.widen_factor': 0.125})
    layout = conv_layout(model_shapes(cfg))
    state_dict = {key: torch.zeros(shape) for key, shape in model_shapes(cfg).items()}
    first = layout[0].entries[0][0]
    state_dict[first][0] = float('nan')
    path = tmp_path / 'diverged.weights'
    with open(path, 'wb') as f:
        write_darknet_weights(f, state_dict, layout)
    with pytest.raises(DarknetWeightsError, match=rf'{path}: 1 of the \d+ values of {first} \(cfg layer \d+\) are NaN '
                                                  'or infinite; the file is damaged or its training diverged'):
        convert_darknet(cfg, str(path))


def test_the_same_input_given_twice_is_detected_once_with_a_warning(tmp_path, warnings_logged):
    folder = tmp_path / 'images'
    folder.mkdir()
    cv2.imwrite(str(folder / 'a.jpg'), np.zeros((8, 8, 3), np.uint8))
    (tmp_path / 'link.jpg').symlink_to(folder / 'a.jpg')
    media = list_media([str(folder / 'a.jpg'), str(folder), str(tmp_path / 'link.jpg'), str(folder / 'a.jpg')],
                       str(tmp_path / 'out'))
    assert media == [(str(folder / 'a.jpg'), 'a.jpg')]
    image = folder / 'a.jpg'
    assert [w for w in warnings_logged if 'given twice' in w] == [
        f'{image} is {image} again (given twice): detected once',  # in the folder given
        f'{tmp_path / "link.jpg"} is {image} again (given twice): detected once',
        f'{image} is {image} again (given twice): detected once']


def test_a_benchmark_with_any_failed_row_exits_non_zero(tmp_path, monkeypatch, capsys):
    tool = load_tool('benchmark.py')
    rows = [dict(model='baseline', status='error', error='boom'), dict(model='parnet', status='ok')]
    monkeypatch.setattr(tool, 'run_benchmark', lambda models, settings, on_row: rows)
    # Only the exit is under test: what measures, checks the workloads and collects the environment is left out.
    for name in ('add_baseline_ratios', 'add_variant_speedups', 'check_workloads', 'benchmark_meta'):
        monkeypatch.setattr(tool, name, lambda *args: None)
    monkeypatch.setattr(tool, 'write_report', lambda work_dir, meta, rows: [])
    with pytest.raises(SystemExit) as info:
        tool.main([DEMO_CONFIG, '--resolutions', '64', '--work-dir', str(tmp_path / 'out')])
    assert info.value.code == (f'error: 1 of the 2 rows failed or timed out (their errors: '
                               f'{tmp_path / "out" / "results.md"})')


def test_an_unreadable_imagenet_image_is_skipped_with_a_counted_warning(tmp_path, warnings_logged):
    root = generate_synthetic_imagenet(str(tmp_path / 'imagenet'), num_train=2, num_val=1)['data_root']
    cfg = load_config(TINY_IMAGENET_CONFIG, {'train_dataloader.dataset.data_root': root})
    init_default_scope('mmpretrain')
    dataset = MMPRETRAIN_DATASETS.build(cfg.train_dataloader.dataset)
    broken = dataset.get_data_info(0)['img_path']
    with open(broken, 'wb') as f:
        f.write(b'\xff\xd8 not a whole JPEG')
    sample = dataset[0]  # mmengine's dataset draws another image instead
    assert sample['data_samples'].img_path != broken
    assert any(f'cannot read image {broken} (' in w and w.endswith('; skipping it and drawing another sample (1 '
                                                                   'skipped so far by this process)')
               for w in warnings_logged), warnings_logged
