"""Every tool and the engine answer bad input with one clear error, exit code 2, and leave nothing behind."""
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import torch
from mmengine.config import Config

from mmdet.registry import MODELS

from parnet_det.apis import init_detector_engine
from parnet_det.datasets import synthetic_coco_cfg_options

from ..helpers import run_tool
from .helpers import ROOT

CONFIG = 'configs/demo/yolo_parnet_tiny_synthetic.py'
CSP_CONFIG = 'configs/demo/yolo_cspdarknet53s_tiny_synthetic.py'
BROKEN_KINDS = ('missing', 'empty', 'truncated', 'random_bytes', 'unsafe')


def save_model(config, path, **cfg_options):
    cfg = Config.fromfile(config)
    cfg.merge_from_dict(cfg_options)
    torch.save({'state_dict': MODELS.build(cfg.model).state_dict(), 'meta': {}}, path)
    return path


def assert_user_error(code, err, *expected):
    assert code == 2, err
    assert re.search('^error: ', err, re.MULTILINE) and 'Traceback' not in err, err
    for text in expected:
        assert text in err, err


@pytest.mark.parametrize('resolution, expected', [(['0'], '0 is not a positive integer'),
                                                  (['-5'], '-5 is not a positive integer'),
                                                  (['64', '64', '64'], '--resolution takes one side or H W, got 3')])
def test_test_tool_refuses_bad_resolutions(capsys, tmp_path, resolution, expected):
    code, _, err = run_tool(capsys, 'test.py', CONFIG, tmp_path / 'x.pth', '--resolution', *resolution)
    assert code == 2 and expected in err


@pytest.mark.parametrize('kind', BROKEN_KINDS)
def test_test_tool_names_a_broken_checkpoint(capsys, tmp_path, tiny_coco, broken_checkpoints, kind):
    path, message = broken_checkpoints[kind]
    work_dir = tmp_path / 'work'
    code, _, err = run_tool(capsys, 'test.py', CONFIG, path, '--work-dir', work_dir, '--cfg-options',
                            *synthetic_coco_cfg_options(tiny_coco['data_root']))
    assert_user_error(code, err, str(path))
    assert not work_dir.exists()
    assert not (path.parent / 'pwned').exists()


@pytest.mark.parametrize('checkpoint_of, first_difference', [
    ((CSP_CONFIG, {}), 'missing keys: backbone.'),
    ((CONFIG, {'model.bbox_head.num_classes': 80}), 'shape differences: bbox_head.multi_level_conv_cls.0.weight: '
                                                    'checkpoint (80, 64, 1, 1), model (5, 64, 1, 1)'),
])
def test_test_tool_refuses_a_checkpoint_of_another_model(capsys, tmp_path, tiny_coco, checkpoint_of,
                                                         first_difference):
    checkpoint = save_model(checkpoint_of[0], tmp_path / 'other.pth', **checkpoint_of[1])
    work_dir = tmp_path / 'work'
    code, _, err = run_tool(capsys, 'test.py', CONFIG, checkpoint, '--work-dir', work_dir, '--deploy',
                            '--cfg-options', *synthetic_coco_cfg_options(tiny_coco['data_root']))
    assert_user_error(code, err, 'other.pth does not fit the model of this config', first_difference)
    assert not work_dir.exists()  # no evaluation, no AP row


@pytest.mark.slow
def test_test_tool_evaluates_a_checkpoint_that_fits(tmp_path, tiny_coco):
    """Guards the refusals above: the strict pre-flight lets the model's own checkpoint through to CocoMetric."""
    checkpoint = save_model(CONFIG, tmp_path / 'own.pth')
    result = subprocess.run([sys.executable, 'tools/test.py', CONFIG, str(checkpoint), '--work-dir',
                             str(tmp_path / 'work'), '--deploy', '--resolution', '64', '--cfg-options',
                             *synthetic_coco_cfg_options(tiny_coco['data_root'])],
                            cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    assert 'coco/bbox_mAP' in (tmp_path / 'work' / 'ap_results.jsonl').read_text()


@pytest.mark.parametrize('kind', BROKEN_KINDS)
def test_train_tool_refuses_to_resume_from_a_broken_file(capsys, tmp_path, tiny_coco, broken_checkpoints, kind):
    path, message = broken_checkpoints[kind]
    work_dir = tmp_path / 'work'
    code, _, err = run_tool(capsys, 'train.py', CONFIG, '--resume', path, '--work-dir', work_dir, '--cfg-options',
                            *synthetic_coco_cfg_options(tiny_coco['data_root']))
    assert_user_error(code, err, str(path))
    assert not work_dir.exists()


def test_train_tool_refuses_to_resume_when_no_checkpoint_is_loadable(tmp_path, tiny_coco):
    # A real process: the skipped files are logged, and mmengine's logger keeps the streams it was created with.
    (tmp_path / 'epoch_1.pth').write_bytes(b'')
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'epoch_1.pth'))
    result = subprocess.run([sys.executable, 'tools/train.py', CONFIG, '--resume', '--work-dir', str(tmp_path),
                             '--cfg-options', *synthetic_coco_cfg_options(tiny_coco['data_root'])],
                            cwd=ROOT, capture_output=True, text=True)
    assert_user_error(result.returncode, result.stderr, f'--resume: no loadable checkpoint in {tmp_path}',
                      'epoch_1.pth is empty')
    assert sorted(os.listdir(tmp_path)) == ['epoch_1.pth', 'last_checkpoint']


@pytest.mark.parametrize('kind', BROKEN_KINDS)
def test_reparameterize_tool_names_a_broken_checkpoint(capsys, tmp_path, broken_checkpoints, kind):
    path, message = broken_checkpoints[kind]
    code, _, err = run_tool(capsys, 'reparameterize.py', CONFIG, path, tmp_path / 'deploy.pth')
    assert_user_error(code, err, str(path))
    assert not (tmp_path / 'deploy.pth').exists()


def test_reparameterize_tool_checks_its_arguments_before_the_work(capsys, tmp_path):
    checkpoint = save_model(CONFIG, tmp_path / 'train.pth')
    code, _, err = run_tool(capsys, 'reparameterize.py', 'configs/nope.py', checkpoint, tmp_path / 'd.pth')
    assert_user_error(code, err, 'config file configs/nope.py does not exist')
    code, _, err = run_tool(capsys, 'reparameterize.py', CONFIG, checkpoint, checkpoint / 'd.pth')
    assert_user_error(code, err, f'cannot write {checkpoint / "d.pth"}: {checkpoint} is a file')

    code, _, err = run_tool(capsys, 'reparameterize.py', CONFIG, checkpoint, tmp_path / 'deploy.pth')
    assert code == 0, err
    code, _, err = run_tool(capsys, 'reparameterize.py', CONFIG, tmp_path / 'deploy.pth', tmp_path / 'again.pth')
    assert_user_error(code, err, 'is already a deploy checkpoint')
    assert sorted(os.listdir(tmp_path)) == ['deploy.pth', 'train.pth']  # no partial or hidden file


@pytest.mark.parametrize('kind', BROKEN_KINDS)
def test_converter_names_a_broken_checkpoint(capsys, tmp_path, broken_checkpoints, kind):
    path, message = broken_checkpoints[kind]
    code, _, err = run_tool(capsys, 'convert_official_weights.py', path, tmp_path / 'converted.pth')
    assert_user_error(code, err, str(path))
    assert 'weights_only=False' not in err  # torch's advice to turn the safety off is not passed on


@pytest.mark.parametrize('args, expected', [(['--opset', '1'], 'opset 1 is not one torch exports'),
                                            ([], 'is a file, not a directory')])
def test_export_tool_checks_its_arguments_before_the_work(capsys, tmp_path, args, expected):
    checkpoint = save_model(CONFIG, tmp_path / 'train.pth')
    out = (tmp_path / 'model.onnx') if args else (checkpoint / 'model.onnx')
    code, _, err = run_tool(capsys, 'deploy/export_onnx.py', CONFIG, checkpoint, out, *args)
    assert_user_error(code, err, expected)
    assert sorted(os.listdir(tmp_path)) == ['train.pth']


def test_a_user_error_in_a_real_process_is_one_line_without_traceback(tmp_path, tiny_coco, broken_checkpoints):
    path, _ = broken_checkpoints['truncated']
    result = subprocess.run([sys.executable, 'tools/test.py', CONFIG, str(path), '--work-dir', str(tmp_path / 'w'),
                             '--cfg-options', *synthetic_coco_cfg_options(tiny_coco['data_root'])],
                            cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith('error: checkpoint ')
    assert 'Traceback' not in result.stderr


@pytest.fixture(scope='module')
def engine():
    return init_detector_engine(CONFIG, None, 'cpu')


@pytest.mark.parametrize('images, error, message', [
    ('demo.jpg', TypeError, 'expected a list of images .* got a str; for one image pass \\[image\\]'),
    (np.zeros((32, 32, 3), np.uint8), TypeError, 'got a ndarray'),
    ([np.zeros((0, 0, 3), np.uint8)], ValueError, 'image 0 is empty \\(0x0 pixels\\)'),
    ([np.zeros((1, 5000, 3), np.uint8)], ValueError, 'image 0 \\(1x5000 pixels\\) is too elongated'),
])
def test_engine_refuses_input_it_cannot_detect_on(engine, images, error, message):
    with pytest.raises(error, match=message):
        engine(images)


@pytest.mark.skipif(torch.cuda.is_available(), reason='checks the refusal on a machine without CUDA')
def test_engine_refuses_cuda_without_cuda():
    with pytest.raises(ValueError, match="device cuda: .*; use device='cpu'"):
        init_detector_engine(CONFIG, None, 'cuda')


def test_report_tool_names_missing_inputs(capsys, tmp_path):
    code, _, err = run_tool(capsys, 'report.py', '--ap', tmp_path / 'ap.jsonl', '--benchmark', tmp_path / 'b.json',
                            '--out', tmp_path / 'report')
    assert_user_error(code, err, f'no such file: {tmp_path / "ap.jsonl"}, {tmp_path / "b.json"}')
    assert not (tmp_path / 'report').exists()


@pytest.mark.parametrize('args, expected', [(['--num-classes', '99'], 'num_classes must be in [1, 8], got 99'),
                                            (['--num-train', '-3'], '-3 is negative')])
def test_dataset_generator_refuses_bad_arguments(capsys, tmp_path, args, expected):
    code, _, err = run_tool(capsys, 'dataset/generate_synthetic_coco.py', tmp_path / 'data', *args)
    assert code == 2 and expected in err
    assert not (tmp_path / 'data').exists()
