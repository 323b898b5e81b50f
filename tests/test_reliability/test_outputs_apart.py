"""Outputs never replace inputs (issues 26, 33): every tool refuses, before any work, an output that is one of its
input files (a config's ``_base_`` chain included), an archive inside the folder it packs, a drawing folder over a
dataset's images or a work dir that is the data, resolved after ``..`` and symlinks; temporaries are never written
through a planted link, and an existing file that is not the tool's own earlier output is never replaced."""
import os
import pickle
import runpy
import secrets
import shutil
import tarfile

import pytest
from mmengine.config import Config

from parnet_det.datasets import synthetic_coco_cfg_options
from parnet_det.utils.config import data_paths
from parnet_det.utils.fileio import OutputIsInputError, atomic_write, check_writable_file, file_starts_with

from ..helpers import run_tool
from .helpers import ROOT

DEMO_CONFIG = 'configs/demo/yolo_parnet_tiny_synthetic.py'


def _snapshot(directory):
    """Every file under ``directory``: its bytes and modification time."""
    return {os.path.relpath(os.path.join(folder, name), directory):
            (os.stat(os.path.join(folder, name)).st_mtime_ns, open(os.path.join(folder, name), 'rb').read())
            for folder, _, names in os.walk(directory) for name in names}


@pytest.fixture
def weights(tmp_path):
    """An input file standing for a checkpoint or a darknet file (the refusal comes before it is read)."""
    path = tmp_path / 'weights.pth'
    path.write_bytes(b'the only copy of the trained weights')
    return path


@pytest.mark.parametrize('tool, make_args', [
    ('convert_darknet_weights.py', lambda src, dst: ['configs/yolov4_csp_coco.py', src, dst]),
    ('reparameterize.py', lambda src, dst: [DEMO_CONFIG, src, dst]),
    ('convert_official_weights.py', lambda src, dst: [src, dst]),
])
@pytest.mark.parametrize('same_file', ['same name', 'hard link', 'symlink'])
def test_a_converter_refuses_to_write_over_its_input(capsys, tmp_path, weights, tool, make_args, same_file):
    output = {'same name': weights, 'hard link': tmp_path / 'link.pth', 'symlink': tmp_path / 'sym.pth'}[same_file]
    if same_file == 'hard link':
        os.link(weights, output)
    elif same_file == 'symlink':
        output.symlink_to(weights)
    before = _snapshot(tmp_path)
    code, _, err = run_tool(capsys, tool, *make_args(weights, output))
    assert code == 2, err
    assert err.splitlines()[-1] == (f'error: {output} is the input {weights}: writing it would replace the input; '
                                    'give another output path')
    assert _snapshot(tmp_path) == before


def test_reparameterize_refuses_to_write_over_its_config(capsys, tmp_path, weights):
    config = tmp_path / 'config.py'
    config.write_text(open(DEMO_CONFIG).read().replace("'../_base_/", f"'{os.path.abspath('configs/_base_')}/"))
    before = _snapshot(tmp_path)
    code, _, err = run_tool(capsys, 'reparameterize.py', config, weights, config)
    assert code == 2 and err.splitlines()[-1].startswith(f'error: {config} is the input {config}: ')
    assert _snapshot(tmp_path) == before


def test_benchmark_matrix_refuses_an_archive_inside_the_work_dir_it_packs(capsys, tmp_path):
    work_dir = tmp_path / 'matrix'
    work_dir.mkdir()
    (work_dir / 'rows.jsonl').write_text('{"model": "measured before"}\n')
    before = _snapshot(tmp_path)
    code, _, err = run_tool(capsys, 'benchmark_matrix.py', '--preset', 'cpu', '--work-dir', work_dir, '--part',
                            'report', '--archive', work_dir / 'rows.jsonl')
    assert code == 2
    assert err.splitlines()[-1] == (f'error: {work_dir / "rows.jsonl"} is inside the input folder {work_dir}: '
                                    'writing it there would change the input; give an output path outside it')
    assert _snapshot(tmp_path) == before


def test_an_output_into_a_folder_that_is_still_to_be_made_is_caught_too(tmp_path):
    with pytest.raises(OutputIsInputError, match='is inside the input folder'):
        check_writable_file(str(tmp_path / 'new' / 'a.tar.gz'), parent_may_be_missing=True,
                            inputs=[str(tmp_path / 'new')])
    check_writable_file(str(tmp_path / 'a.tar.gz'), inputs=[str(tmp_path / 'new'), str(tmp_path / 'b.tar.gz')])


def _show_dir_error(capsys, data_root, weights, work_dir, show_dir):
    code, _, err = run_tool(capsys, 'test.py', DEMO_CONFIG, weights, '--work-dir', work_dir, '--show-dir', show_dir,
                            '--cfg-options', *synthetic_coco_cfg_options(data_root))
    assert code == 2 and 'Traceback' not in err, err
    return err.splitlines()[-1]


def test_show_dir_on_the_dataset_images_is_refused_and_they_stay_as_they_are(capsys, data_root, weights, tmp_path):
    images = os.path.join(data_root, 'val')
    before = _snapshot(data_root)
    line = _show_dir_error(capsys, data_root, weights, tmp_path / 'work', images)
    assert line.startswith(f'error: {images} is the input ') or line.startswith(f'error: --show-dir {images} is not '
                                                                               'empty')
    assert _snapshot(data_root) == before
    assert not (tmp_path / 'work').exists()


def test_show_dir_inside_the_dataset_images_is_refused(capsys, data_root, weights, tmp_path):
    inside = os.path.join(data_root, 'val', 'drawn')
    line = _show_dir_error(capsys, data_root, weights, tmp_path / 'work', inside)
    assert line.startswith(f'error: {inside} is inside the input folder {os.path.join(data_root, "val/")}')
    assert not os.path.exists(inside)


def test_show_dir_that_is_not_empty_is_refused(capsys, data_root, weights, tmp_path):
    (tmp_path / 'drawn').mkdir()
    (tmp_path / 'drawn' / 'keep.jpg').write_bytes(b'an earlier drawing')
    line = _show_dir_error(capsys, data_root, weights, tmp_path / 'work', tmp_path / 'drawn')
    assert line == (f'error: --show-dir {tmp_path / "drawn"} is not empty (1 entries: keep.jpg); the tool never '
                    'writes over files: give a new or empty folder')
    assert (tmp_path / 'drawn' / 'keep.jpg').read_bytes() == b'an earlier drawing'


def test_a_relative_show_dir_leading_out_of_the_work_dir_is_refused(capsys, data_root, weights, tmp_path):
    line = _show_dir_error(capsys, data_root, weights, tmp_path / 'work', '../../val')
    assert line == (f'error: --show-dir ../../val leads out of the work dir (the drawings go to {tmp_path / "work"}'
                    '/<timestamp>/../../val); give a folder name, or an absolute path to a new or empty folder to '
                    'draw elsewhere')


# Issue 33: one output rule whatever the work dir is; temporaries never followed; foreign files never replaced.

@pytest.mark.parametrize('form', ['the data root', 'a symlink to the data root', 'the image folder via ..'])
def test_test_py_refuses_a_work_dir_that_is_the_data_and_draws_nothing_over_it(capsys, data_root, weights,
                                                                              tmp_path, form):
    work_dir = {'the data root': data_root, 'a symlink to the data root': tmp_path / 'link',
                'the image folder via ..': os.path.join(data_root, 'annotations', '..', 'val')}[form]
    if form == 'a symlink to the data root':
        (tmp_path / 'link').symlink_to(data_root)
    before = _snapshot(data_root)
    show_dir = '..' if form == 'the image folder via ..' else '../val'
    line = _show_dir_error(capsys, data_root, weights, work_dir, show_dir)
    assert line.startswith(f'error: {work_dir} is ') and 'the input' in line, line
    assert _snapshot(data_root) == before


def test_train_py_refuses_a_work_dir_inside_the_data(capsys, data_root):
    before = _snapshot(data_root)
    code, _, err = run_tool(capsys, 'train.py', DEMO_CONFIG, '--work-dir', os.path.join(data_root, 'val', 'run'),
                            '--cfg-options', *synthetic_coco_cfg_options(data_root))
    assert code == 2 and err.splitlines()[-1].startswith(f'error: {os.path.join(data_root, "val", "run")} is inside '
                                                         'the input folder '), err
    assert _snapshot(data_root) == before


def test_test_py_out_never_replaces_a_file_that_is_not_an_earlier_dump(capsys, data_root, weights, tmp_path):
    other = tmp_path / 'model.pkl'  # a checkpoint saved under a results name
    other.write_bytes(b'PK\x03\x04 another checkpoint')
    before = _snapshot(tmp_path)
    code, _, err = run_tool(capsys, 'test.py', DEMO_CONFIG, weights, '--work-dir', tmp_path / 'work', '--out', other,
                            '--cfg-options', *synthetic_coco_cfg_options(data_root))
    assert code == 2
    assert err.splitlines()[-1] == (f'error: {other} exists and is a file that is not an earlier output of this tool; '
                                    'it is never replaced: give a new path, or remove it first if it is yours to lose')
    assert _snapshot(tmp_path) == before


@pytest.mark.parametrize('form', ['plain', '..', 'symlink'])
def test_reparameterize_refuses_to_write_over_a_base_config(capsys, tmp_path, weights, form):
    configs = tmp_path / 'configs'
    for folder in ('demo', '_base_'):
        shutil.copytree(os.path.join('configs', folder), configs / folder)
    base = configs / '_base_' / 'yolo_pafpn_coco.py'  # the chain's second link
    out = {'plain': base, '..': configs / 'demo' / '..' / '_base_' / 'yolo_pafpn_coco.py',
           'symlink': tmp_path / 'deploy.pth'}[form]
    if form == 'symlink':
        out.symlink_to(base)
    before = _snapshot(tmp_path)
    code, _, err = run_tool(capsys, 'reparameterize.py', configs / 'demo' / 'yolo_parnet_tiny_synthetic.py', weights,
                            out)
    assert code == 2 and err.splitlines()[-1].startswith(f'error: {out} is the input '), err
    assert _snapshot(tmp_path) == before


def test_benchmark_matrix_archive_writes_through_no_planted_temporary(tmp_path):
    work_dir = tmp_path / 'matrix'
    work_dir.mkdir()
    (work_dir / 'rows.jsonl').write_text('{"model": "measured"}\n')
    victim = tmp_path / 'victim.txt'
    victim.write_text('not yours')
    archive = tmp_path / 'matrix.tar.gz'
    (tmp_path / 'matrix.tar.gz.part').symlink_to(victim)  # the name the tool once used
    runpy.run_path(os.path.join(ROOT, 'tools', 'benchmark_matrix.py'))['write_archive'](str(work_dir), str(archive))
    assert victim.read_text() == 'not yours'
    with tarfile.open(archive) as tar:
        assert tar.getnames() == ['matrix', 'matrix/rows.jsonl']
    assert sorted(os.listdir(tmp_path)) == ['matrix', 'matrix.tar.gz', 'matrix.tar.gz.part', 'victim.txt']


def test_a_temporary_is_never_created_through_a_planted_link_even_under_a_guessed_name(tmp_path, monkeypatch):
    victim = tmp_path / 'victim.txt'
    victim.write_text('not yours')
    monkeypatch.setattr(secrets, 'token_hex', lambda nbytes: 'guessed')
    (tmp_path / '.out.bin.guessed.tmp').symlink_to(victim)
    with pytest.raises(FileExistsError):
        with atomic_write(str(tmp_path / 'out.bin')) as f:
            f.write(b'payload')
    assert victim.read_text() == 'not yours' and not (tmp_path / 'out.bin').exists()


def test_a_data_root_holding_the_current_folder_stands_by_its_image_folders_and_files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = Config(dict(test_dataloader=dict(dataset=dict(
        type='CocoDataset', data_root='./', ann_file='annotations/val.json', data_prefix=dict(img='val/')))))
    assert data_paths(cfg) == ['./val/', './annotations/val.json']  # not './': ./work_dirs is no part of the data
    cfg.test_dataloader.dataset.data_root = 'coco/'
    assert data_paths(cfg) == ['coco/', 'coco/val/', 'coco/annotations/val.json']


def test_only_a_tools_own_earlier_output_is_replaced(tmp_path):
    earlier_dump = tmp_path / 'results.pkl'
    earlier_dump.write_bytes(pickle.dumps([{'pred': 1}], protocol=2))  # what mmengine's DumpResults writes
    checkpoint = tmp_path / 'model.pkl'
    checkpoint.write_bytes(b'PK\x03\x04 a checkpoint under a results name')
    (tmp_path / 'link.pkl').symlink_to(earlier_dump)
    own = file_starts_with(b'\x80\x02]')
    check_writable_file(str(earlier_dump), own_output=own)
    check_writable_file(str(tmp_path / 'new.pkl'), own_output=own)
    for foreign, what in ((checkpoint, 'a file that is not an earlier output of this tool'), (tmp_path / 'link.pkl',
                                                                                                'a symlink')):
        with pytest.raises(FileExistsError, match=f'exists and is {what}; it is never replaced'):
            check_writable_file(str(foreign), own_output=own)


@pytest.mark.parametrize('form', ['relative', '..', 'symlinked folder'])
def test_test_py_out_never_lands_in_the_data(capsys, data_root, weights, tmp_path, monkeypatch, form):
    monkeypatch.chdir(data_root)
    (tmp_path / 'elsewhere').symlink_to(os.path.join(data_root, 'annotations'))
    out = {'relative': 'annotations/results.pkl', '..': f'{tmp_path}/work/../coco/val/results.pkl',
           'symlinked folder': f'{tmp_path}/elsewhere/results.pkl'}[form]
    before = _snapshot(data_root)
    code, _, err = run_tool(capsys, 'test.py', os.path.join(ROOT, DEMO_CONFIG), weights, '--work-dir',
                            tmp_path / 'work', '--out', out, '--cfg-options', *synthetic_coco_cfg_options(data_root))
    assert code == 2 and err.splitlines()[-1].startswith(f'error: {out} is inside the input folder '), err
    assert _snapshot(data_root) == before and not (tmp_path / 'work').exists()
