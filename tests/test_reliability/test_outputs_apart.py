"""Outputs never replace inputs (issue 26): every tool refuses, before any work, an output that is one of its
input files, an archive inside the folder it packs, or a drawing folder over a dataset's images."""
import os

import pytest

from parnet_det.datasets import synthetic_coco_cfg_options
from parnet_det.utils.fileio import OutputIsInputError, check_writable_file

from .helpers import run_tool

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
