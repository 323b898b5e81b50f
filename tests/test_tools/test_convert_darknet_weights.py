"""tools/convert_darknet_weights.py: refusals with their messages, and the converted checkpoint in tools/test.py."""
import json
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
import torch

from parnet_det.apis import build_detector, load_config
from parnet_det.convert.darknet_yolov4_csp import DarknetWeightsError, convert_darknet
from parnet_det.datasets import synthetic_coco_cfg_options
from parnet_det.utils.checkpoint import CorruptCheckpointError

from ..helpers import run_tool
from ..yolov4_csp_reference import conv_specs, parse_layers, random_darknet_arrays, write_darknet_weights

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = 'configs/yolov4_csp_coco.py'
OFFICIAL_FLOATS = 52_986_205  # after the 20-byte header of version 0.2.5


def sized_file(path, num_floats, version=(0, 2, 5)):
    """A darknet file of ``num_floats`` zeros (sparse: the refusals are decided on header and size)."""
    with open(path, 'wb') as f:
        f.write(np.array(version, dtype='<i4').tobytes() + np.array([0], dtype='<u8').tobytes())
        f.truncate(20 + 4 * num_floats)
    return str(path)


@pytest.fixture(scope='module')
def cfg():
    return load_config(CONFIG)


def test_truncated_file_names_the_layer_it_runs_out_in(cfg, tmp_path):
    # The last conv (173, the P5 prediction conv) holds 255 x (1024 + 1) floats.
    path = sized_file(tmp_path / 'short.weights', OFFICIAL_FLOATS - 1000)
    with pytest.raises(DarknetWeightsError, match=rf'holds {OFFICIAL_FLOATS - 1000} floats, the config expects '
                       rf'{OFFICIAL_FLOATS}: it is truncated, it runs out in cfg layer 173 \(conv 115 of 115, '
                       r'bbox_head\.convs_pred\.2\.weight\)'):
        convert_darknet(cfg, path)
    path = sized_file(tmp_path / 'shorter.weights', 100)
    with pytest.raises(DarknetWeightsError, match=r'runs out in cfg layer 0 \(conv 1 of 115'):
        convert_darknet(cfg, path)


def test_long_file_is_refused(cfg, tmp_path):
    path = sized_file(tmp_path / 'long.weights', OFFICIAL_FLOATS + 7)
    with pytest.raises(DarknetWeightsError, match=r'7 floats follow the last conv \(cfg layer 173\); it is the '
                       r'weights of another network or cfg$'):
        convert_darknet(cfg, path)


@pytest.mark.parametrize('version', [(1, 0, 0), (0, 3, 0), (1234, 5, 6)])
def test_unknown_header_is_refused(cfg, tmp_path, version):
    path = sized_file(tmp_path / 'bad.weights', OFFICIAL_FLOATS, version)
    with pytest.raises(DarknetWeightsError, match=r'unknown darknet header version '
                       + r'\.'.join(map(str, version))):
        convert_darknet(cfg, path)


def test_body_that_is_not_whole_floats_is_refused(cfg, tmp_path):
    path = sized_file(tmp_path / 'odd.weights', OFFICIAL_FLOATS)
    with open(path, 'ab') as f:
        f.write(b'\0\0')
    with pytest.raises(DarknetWeightsError, match='not a whole number of float32'):
        convert_darknet(cfg, path)


@pytest.mark.parametrize('num_classes', [20, 81])
def test_file_of_another_class_count_says_which(cfg, tmp_path, num_classes):
    layers = parse_layers(num_classes)
    specs = conv_specs(layers)
    path = tmp_path / f'yolov4-csp-{num_classes}.weights'
    with open(path, 'wb') as f:
        write_darknet_weights(f, specs, random_darknet_arrays(specs, seed=1))
    with pytest.raises(DarknetWeightsError, match=rf'its size fits the same network with {num_classes} classes '
                       r'\(the config has 80\): convert it with a config of that many classes'):
        convert_darknet(cfg, str(path))


def test_config_of_another_network_is_refused():
    # The YOLOX-style CSPDarknet53s shares one BN after its CSP concat: no BN of its own on the split conv 6.
    with pytest.raises(DarknetWeightsError, match=r'the config does not build YOLOv4-CSP: it has no '
                       r'backbone\.stage1\.1\.short_conv\.bn\.bias \(the cfg layer 6\)'):
        convert_darknet(load_config('configs/yolo_cspdarknet53s_coco.py'), 'unused.weights')


def test_cli_refuses_in_one_line_and_keeps_the_output(tmp_path, capsys):
    src = sized_file(tmp_path / 'short.weights', OFFICIAL_FLOATS - 1)
    dst = tmp_path / 'out.pth'
    # An earlier conversion (the only kind of file the tool replaces, issue 33), kept when this one fails.
    torch.save({'state_dict': {}, 'meta': {'darknet_version': '0.2.5'}}, dst)
    previous = dst.read_bytes()
    code, _, err = run_tool(capsys, 'convert_darknet_weights.py', CONFIG, src, dst)
    assert code == 2
    assert err.startswith('error: ') and len(err.strip().splitlines()) == 1
    assert 'it is truncated' in err
    assert dst.read_bytes() == previous


def synthetic_options(data_root):
    """--cfg-options moving the COCO config's test split onto a generated dataset, with its classes."""
    with open(osp.join(data_root, 'annotations/instances_val.json')) as f:
        names = [category['name'] for category in json.load(f)['categories']]
    return names, [f'model.bbox_head.num_classes={len(names)}',
                   f'test_dataloader.dataset.metainfo.classes=({",".join(names)})',
                   'test_dataloader.dataset.ann_file=annotations/instances_val.json',
                   'test_dataloader.dataset.data_prefix.img=val/', *synthetic_coco_cfg_options(data_root)]


def test_a_weights_file_given_as_checkpoint_says_to_convert(tiny_coco, tmp_path, capsys):
    path = sized_file(tmp_path / 'yolov4-csp.weights', 10)
    with pytest.raises(CorruptCheckpointError, match=r'darknet \.weights file, not a PyTorch checkpoint: convert '
                       r'it first with python tools/convert_darknet_weights.py'):
        build_detector(CONFIG, path)
    renamed = sized_file(tmp_path / 'renamed.pth', 10)  # recognised by its header too
    code, _, err = run_tool(capsys, 'test.py', CONFIG, renamed, '--cfg-options',
                            *synthetic_options(tiny_coco['data_root'])[1])
    assert code == 2, err[-3000:]
    assert 'tools/convert_darknet_weights.py' in err and len(err.strip().splitlines()) == 1


@pytest.mark.slow
def test_converted_checkpoint_evaluates_with_tools_test(tiny_coco, tmp_path, capsys):
    """The full-width network with the generated dataset's classes, at 128 px: convert, then test."""
    names, options = synthetic_options(tiny_coco['data_root'])
    specs = conv_specs(parse_layers(len(names)))
    src = str(tmp_path / 'yolov4-csp-synthetic.weights')
    with open(src, 'wb') as f:
        write_darknet_weights(f, specs, random_darknet_arrays(specs, seed=2))
    dst = str(tmp_path / 'yolov4_csp_synthetic.pth')
    code, out, err = run_tool(capsys, 'convert_darknet_weights.py', CONFIG, src, dst, '--cfg-options', *options)
    assert code == 0, err[-3000:]
    assert f'{len(names)} classes' in out
    work_dir = str(tmp_path / 'test')
    # tools/test.py as a user runs it: its own process.
    result = subprocess.run([sys.executable, 'tools/test.py', CONFIG, dst, '--work-dir', work_dir, '--resolution',
                             '128', '--cfg-options', *options], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    with open(osp.join(work_dir, 'ap_results.jsonl')) as f:
        record = json.loads(f.readline())
    assert record['model'] == 'yolov4_csp_coco' and record['resolution'] == [128, 128]
    assert 0 <= record['metrics']['coco/bbox_mAP'] <= 1
