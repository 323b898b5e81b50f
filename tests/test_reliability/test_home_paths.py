"""``~`` in a path argument means the home folder for every tool, also where the shell does not expand it
(``--opt=~/x``, quoted): no tool creates a folder named ``~``, and a config under ``~`` is found."""
import os

from parnet_det.utils.cli_args import path_arg

from ..helpers import run_tool


def test_path_arg_expands_home(monkeypatch, tmp_path):
    monkeypatch.setenv('HOME', str(tmp_path))
    assert path_arg('~/w') == str(tmp_path / 'w') and path_arg('w/~') == 'w/~'


def test_option_with_equals_and_tilde_is_the_home_folder(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv('HOME', str(tmp_path))
    work_dir = tmp_path / 'matrix'
    work_dir.mkdir()
    (work_dir / 'rows.jsonl').write_text('{"model": "measured before"}\n')
    code, _, err = run_tool(capsys, 'benchmark_matrix.py', '--preset', 'cpu', '--work-dir=~/matrix', '--part',
                            'report', '--archive=~/matrix/all.tar.gz')
    # Both were read as the home folder's: the archive is refused as inside the work dir it packs.
    assert code == 2 and err.splitlines()[-1].startswith(f'error: {work_dir / "all.tar.gz"} is inside the input '
                                                         f'folder {work_dir}: ')
    assert not os.path.exists('~')


def test_a_config_under_home_is_found(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv('HOME', str(tmp_path))
    config = tmp_path / 'c.py'
    config.write_text(open('configs/demo/yolo_parnet_tiny_synthetic.py').read().replace(
        "'../_base_/", f"'{os.path.abspath('configs/_base_')}/"))
    weights = tmp_path / 'w.pth'
    weights.write_bytes(b'weights')
    code, _, err = run_tool(capsys, 'reparameterize.py', '~/c.py', '~/w.pth', '~/w.pth')
    # The config was read (no 'does not exist'); the output, expanded too, is the input it would replace.
    assert code == 2 and err.splitlines()[-1].startswith(f'error: {weights} is the input {weights}: ')
    assert weights.read_bytes() == b'weights'
