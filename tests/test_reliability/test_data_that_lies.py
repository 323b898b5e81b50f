"""Data that lies (issue 26): an image whose decoded size is not the annotation file's, a video shorter than its
header says, a legacy checkpoint, infer inputs that are not regular files or sit behind symlinks."""
import os

import cv2
import numpy as np
import pytest
import torch
from mmengine.structures import InstanceData
from PIL import Image

from mmdet.structures import DetDataSample

from parnet_det.apis import MediaInferencer
from parnet_det.datasets import CheckedLoadImageFromFile
from parnet_det.inference.media import list_media
from parnet_det.utils.checkpoint import LegacyCheckpointError, load_checkpoint_file


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
