"""Every user error of issue 33's probe table is one ``error:`` line before any work, and leaves nothing behind:
a config that is not Python, ``--cfg-options`` typos, a misspelled model type, an unsafe checkpoint through
``load_from`` / ``init_cfg``, a full disk, an annotation file cut short past the pre-flight's parse limit, two
runs into one output folder."""
import errno
import json
import os

import pytest
import torch

from parnet_det.datasets import checks, synthetic_coco_cfg_options
from parnet_det.utils import fileio
from parnet_det.utils.config import load_config
from parnet_det.utils.work_dir_lock import work_dir_lock

from .helpers import Exploit, preflight_error, run_tool
from .test_data_preflight import demo_cfg

DEMO_CONFIG = 'configs/demo/yolo_parnet_tiny_synthetic.py'


def _one_error_line(code, err):
    assert code == 2 and 'Traceback' not in err, err
    return err.splitlines()[-1]


def test_a_config_that_is_not_python_is_one_line(capsys, tmp_path):
    config = tmp_path / 'config.py'
    config.write_text('model = dict(type="YOLOX",\n')  # cut short
    line = _one_error_line(*run_tool(capsys, 'train.py', config, '--work-dir', tmp_path / 'work')[::2])
    assert line.startswith(f'error: {config} is not a config file mmengine can read (') and line.endswith(
        'give a Python config, e.g. configs/yolo_parnet_xl_coco.py')
    assert not (tmp_path / 'work').exists()


@pytest.mark.parametrize('option, meant', [
    ('train_cfg.max_epoch=3', 'train_cfg.max_epochs'),
    ('default_hooks.checkpont.interval=1', 'default_hooks.checkpoint'),
    ('train_dataloader.dataset.data_rot=x', 'train_dataloader.dataset.data_root')])
def test_a_cfg_options_typo_says_what_was_meant_and_leaves_no_work_dir(capsys, data_root, tmp_path, option, meant):
    code, _, err = run_tool(capsys, 'train.py', DEMO_CONFIG, '--work-dir', tmp_path / 'work', '--cfg-options',
                            *synthetic_coco_cfg_options(data_root), option)
    line = _one_error_line(code, err)
    assert line.startswith(f'error: --cfg-options {option.split("=")[0]}: the config has no ') and line.endswith(
        f'did you mean {meant}?'), line
    assert not (tmp_path / 'work').exists()


def test_a_new_cfg_options_key_near_none_of_the_configs_is_a_new_setting():
    assert load_config(DEMO_CONFIG, {'model.backbone.deploy': True}).model.backbone.deploy is True


def test_a_misspelled_model_type_is_one_line_with_the_nearest_name(capsys, tiny_coco, tmp_path):
    code, _, err = run_tool(capsys, 'infer.py', DEMO_CONFIG, tmp_path / 'none.pth', tiny_coco['data_root'] + '/val',
                            '--out-dir', tmp_path / 'out', '--cfg-options', 'model.type=YOLOZ')
    line = _one_error_line(code, err)
    assert line == "error: model.type='YOLOZ' is not a registered model type; did you mean 'YOLOX'?"
    assert not (tmp_path / 'out').exists()


@pytest.mark.parametrize('through', ['load_from', 'init_cfg'])
def test_a_checkpoint_carrying_code_through_load_from_or_init_cfg_is_refused_before_training(
        capsys, data_root, tmp_path, through):
    unsafe = tmp_path / 'unsafe.pth'
    torch.save({'state_dict': {}, 'meta': Exploit(str(tmp_path / 'pwned'))}, unsafe)
    options = ([f'load_from={unsafe}'] if through == 'load_from' else
               ['model.backbone.init_cfg.type=Pretrained', f'model.backbone.init_cfg.checkpoint={unsafe}'])
    code, _, err = run_tool(capsys, 'train.py', DEMO_CONFIG, '--work-dir', tmp_path / 'work', '--cfg-options',
                            *synthetic_coco_cfg_options(data_root), *options)
    line = _one_error_line(code, err)
    assert line.startswith(f'error: refused to load checkpoint {unsafe}: it contains code or Python objects that '
                           'are not weights (subprocess.call)')
    assert not (tmp_path / 'pwned').exists() and not (tmp_path / 'work').exists()


def test_a_full_disk_names_the_folder_and_keeps_the_earlier_file(tmp_path, monkeypatch):
    path = tmp_path / 'epoch_3.pth'
    path.write_bytes(b'the earlier checkpoint')

    def no_space(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, 'fsync', no_space)
    with pytest.raises(fileio.DiskFullError) as info:
        with fileio.atomic_write(str(path)) as f:
            f.write(b'a new checkpoint')
    assert str(info.value).startswith(f'[Errno {errno.ENOSPC}] no space left in {tmp_path} while writing epoch_3.pth '
                                      '(No space left on device): nothing was replaced, its earlier content is intact')
    assert path.read_bytes() == b'the earlier checkpoint' and os.listdir(tmp_path) == ['epoch_3.pth']


def _cut(path, keep):
    with open(path, 'rb') as f:
        content = f.read()
    with open(path, 'wb') as f:
        f.write(content[:keep(content)])
    return keep(content)


def test_an_annotation_file_cut_short_past_the_parse_limit_is_named_by_the_preflight(data_root, monkeypatch):
    path = os.path.join(data_root, 'annotations', 'instances_val.json')
    size = _cut(path, lambda content: content.rindex(b'"name"'))  # in the middle of the categories
    monkeypatch.setattr(checks, '_FULL_PARSE_LIMIT', 1024)  # the 64 MB limit, scaled to the generated file
    assert (f'annotation file {path} is cut short: its {size} bytes end inside the JSON'
            in preflight_error(demo_cfg(data_root)))


def test_one_cut_right_after_an_object_is_named_by_the_dataset_before_any_sample(capsys, data_root, monkeypatch,
                                                                                 tmp_path):
    path = os.path.join(data_root, 'annotations', 'instances_train.json')
    size = _cut(path, lambda content: content.index(b'}', content.index(b'"annotations"')) + 1)  # ends in '}'
    monkeypatch.setattr(checks, '_FULL_PARSE_LIMIT', size // 2)
    code, _, err = run_tool(capsys, 'train.py', DEMO_CONFIG, '--work-dir', tmp_path / 'work', '--cfg-options',
                            *synthetic_coco_cfg_options(data_root))
    assert code == 2 and 'Traceback' not in err, err
    assert err.splitlines()[-1].startswith(f'  - annotation file {path} is not valid JSON (')
    assert 'Epoch(train)' not in err


def test_a_second_infer_run_into_a_folder_in_use_is_refused(capsys, tiny_coco, tmp_path):
    out_dir = tmp_path / 'out'
    infer_lock = '.infer.lock'
    with work_dir_lock(str(out_dir), infer_lock, 'infer.py run', '--out-dir'):  # the first run, still writing
        code, _, err = run_tool(capsys, 'infer.py', DEMO_CONFIG, tmp_path / 'none.pth',
                                tiny_coco['data_root'] + '/val', '--out-dir', out_dir)
        line = _one_error_line(code, err)
        assert line.startswith(f'error: out dir {out_dir} is in use by another infer.py run (pid {os.getpid()} ')
        assert os.listdir(out_dir) == [infer_lock]


def test_a_second_benchmark_matrix_run_into_its_work_dir_is_refused(capsys, tmp_path):
    work_dir = tmp_path / 'matrix'
    work_dir.mkdir()
    rows = work_dir / 'rows.jsonl'
    rows.write_text(json.dumps({'model': 'measured before'}) + '\n')
    with work_dir_lock(str(work_dir), '.matrix.lock', 'benchmark_matrix run'):
        code, _, err = run_tool(capsys, 'benchmark_matrix.py', '--preset', 'cpu', '--work-dir', work_dir,
                                '--part', 'report')
        line = _one_error_line(code, err)
        assert line.startswith(f'error: work dir {work_dir} is in use by another benchmark_matrix run (pid ')
    assert rows.read_text() == json.dumps({'model': 'measured before'}) + '\n'
