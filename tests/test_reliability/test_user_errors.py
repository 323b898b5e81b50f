"""Every user error of issue 33's probe table is one ``error:`` line before any work, and leaves nothing behind:
a config that is not Python, ``--cfg-options`` typos, a misspelled model type, an unsafe checkpoint through
``load_from`` / ``init_cfg``, a full disk, an annotation file cut short past the pre-flight's parse limit, two
runs into one output folder, an ``--onnx`` graph that is damaged, of another size or batch, or of another
checkpoint."""
import errno
import json
import os

import pytest
import torch

from parnet_det.apis import build_detector
from parnet_det.apis.inferencer import OUT_DIR_LOCK, locked_outputs
from parnet_det.apis.runtime_predictor import check_onnx_graph, stamp_checkpoint
from parnet_det.datasets import checks, synthetic_coco_cfg_options
from parnet_det.utils import fileio
from parnet_det.utils.config import load_config
from parnet_det.utils.work_dir_lock import work_dir_lock

from ..helpers import run_tool
from ..test_tools.test_train_test_end_to_end import CONFIG, data_options
from .helpers import Exploit, preflight_error
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
    assert str(info.value).startswith(f'no space left in {tmp_path} while writing epoch_3.pth (No space left on '
                                      'device): nothing was replaced, its earlier content is intact')
    assert info.value.errno == errno.ENOSPC
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
    with locked_outputs([tiny_coco['data_root'] + '/val'], str(out_dir)):  # the first run, writing
        for tool, extra in (('infer.py', []), ('deploy/infer_runtime.py', ['--runtime', 'onnxruntime'])):
            code, _, err = run_tool(capsys, tool, DEMO_CONFIG, tmp_path / 'none.pth', tiny_coco['data_root'] + '/val',
                                    '--out-dir', out_dir, *extra)
            line = _one_error_line(code, err)
            assert line.startswith(f'error: out dir {out_dir} is in use by another inference run (pid {os.getpid()} ')
            assert os.listdir(out_dir) == [OUT_DIR_LOCK]


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


def _graph(path, batch, height, width):
    """A stand-in for an exported graph: the input ``images`` of that shape (None: a dynamic side)."""
    onnx = pytest.importorskip('onnx')
    shape = ['batch' if side is None else side for side in (batch, 3, height, width)]
    graph = onnx.helper.make_graph(
        [onnx.helper.make_node('Identity', ['images'], ['boxes'])], 'g',
        [onnx.helper.make_tensor_value_info('images', onnx.TensorProto.FLOAT, shape)],
        [onnx.helper.make_tensor_value_info('boxes', onnx.TensorProto.FLOAT, None)])
    onnx.save(onnx.helper.make_model(graph), str(path))
    return path


@pytest.fixture
def demo_checkpoint(tmp_path):
    path = tmp_path / 'demo.pth'
    torch.save({'state_dict': build_detector(DEMO_CONFIG).state_dict(), 'meta': {}}, path)
    return path


@pytest.mark.parametrize('damage', ['cut short', 'not a graph'])
def test_a_corrupt_onnx_graph_is_one_line_before_any_runtime_loads_it(capsys, tiny_coco, tmp_path, demo_checkpoint,
                                                                      damage):
    graph = _graph(tmp_path / 'model.onnx', None, 320, 320)
    content = graph.read_bytes()
    graph.write_bytes(content[:len(content) // 2] if damage == 'cut short' else b'a text file, not ONNX')
    code, _, err = run_tool(capsys, 'deploy/infer_runtime.py', DEMO_CONFIG, demo_checkpoint,
                            tiny_coco['data_root'] + '/val', '--runtime', 'onnxruntime', '--onnx', graph,
                            '--out-dir', tmp_path / 'out')
    assert _one_error_line(code, err).startswith(f'error: {graph} is not a readable ONNX graph (')
    assert not (tmp_path / 'out').exists()


@pytest.mark.parametrize('shape, batch_size, says', [
    ((None, 64, 64), 1, "takes images of [64, 64] (H, W), the config's test size is "),
    ((2, 160, 160), 2, 'takes batches of exactly 2 images: with --batch-size 2 a batch (the last, at least) would '
                       'not fit; export it with --dynamic-batch'),
])
def test_a_graph_of_another_size_or_batch_is_refused_before_any_image(capsys, tiny_coco, tmp_path, demo_checkpoint,
                                                                      shape, batch_size, says):
    graph = _graph(tmp_path / 'model.onnx', *shape)
    stamp_checkpoint(str(graph), str(demo_checkpoint))
    code, _, err = run_tool(capsys, 'deploy/infer_runtime.py', DEMO_CONFIG, demo_checkpoint,
                            tiny_coco['data_root'] + '/val', '--runtime', 'onnxruntime', '--onnx', graph,
                            '--batch-size', batch_size, '--out-dir', tmp_path / 'out')
    line = _one_error_line(code, err)
    assert line.startswith(f'error: {graph} ') and says in line, line
    assert not (tmp_path / 'out').exists()


def test_a_graph_exported_from_another_checkpoint_is_refused(tmp_path, demo_checkpoint):
    graph = _graph(tmp_path / 'model.onnx', None, 320, 320)
    other = tmp_path / 'other.pth'
    other.write_bytes(b'the weights the graph was exported from')
    stamp_checkpoint(str(graph), str(other))
    with pytest.raises(ValueError, match=rf'{graph} was exported from another checkpoint \(SHA-256 [0-9a-f]{{12}}'
                                         rf'\.\.\.\), not from {demo_checkpoint} '):
        check_onnx_graph(str(graph), (320, 320), 1, str(demo_checkpoint))
    stamp_checkpoint(str(graph), str(demo_checkpoint))
    check_onnx_graph(str(graph), (320, 320), 4, str(demo_checkpoint))  # its own checkpoint: fine


@pytest.mark.slow  # a real epoch of training (~20 s on the 2-core VM)
def test_a_full_disk_while_training_saves_is_one_line_naming_the_folder(capsys, tiny_coco, tmp_path, monkeypatch):
    def no_space(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, 'fsync', no_space)  # every crash-safe write: the first is epoch_1.pth
    work_dir = tmp_path / 'work'
    code, _, err = run_tool(capsys, 'train.py', CONFIG, '--work-dir', work_dir, '--cfg-options',
                            *data_options(tiny_coco['data_root'], size=64), 'train_cfg.max_epochs=1')
    assert _one_error_line(code, err) == (
        f'error: no space left in {work_dir} while writing epoch_1.pth (No space left on device): nothing was '
        'replaced, no partial file is left under its name, and every file written before is complete; free space '
        'there (or write elsewhere) and run again')
    assert not [name for name in os.listdir(work_dir) if name.endswith(('.pth', '.tmp'))]
