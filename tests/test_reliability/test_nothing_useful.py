"""Tools that produce nothing useful say so and exit non-zero; every parse error names its file (issue 26)."""
import os

import pytest

from ..helpers import run_tool
from .test_entry_points import CSP_CONFIG, save_model

DEMO_CONFIG = 'configs/demo/yolo_parnet_tiny_synthetic.py'


def test_a_report_of_no_rows_is_refused_before_anything_is_written(capsys, tmp_path):
    work_dir = tmp_path / 'matrix'
    code, _, err = run_tool(capsys, 'benchmark_matrix.py', '--preset', 'cpu', '--work-dir', work_dir,
                            '--part', 'report')
    assert code == 2
    assert err.splitlines()[-1] == (f'error: --part report: {work_dir / "rows.jsonl"} has no rows to report; measure '
                                    'them first (--part all, inference or training)')
    assert not work_dir.exists()


@pytest.mark.parametrize('content, says', [
    (b'\x89PNG\r\n\x1a\n\x00\xff\xfe', 'is not text; it is not a benchmark rows.jsonl'),
    (b'[1, 2]\n{"model": "a"}\n', ':1 is JSON but not a benchmark row (no "model")'),
])
def test_a_rows_file_that_is_not_one_is_named(capsys, tmp_path, content, says):
    work_dir = tmp_path / 'matrix'
    work_dir.mkdir()
    (work_dir / 'rows.jsonl').write_bytes(content)
    code, _, err = run_tool(capsys, 'benchmark_matrix.py', '--preset', 'cpu', '--work-dir', work_dir,
                            '--part', 'report')
    assert code == 2 and err.splitlines()[-1].startswith(f'error: {work_dir / "rows.jsonl"}')
    assert says in err and (work_dir / 'rows.jsonl').read_bytes() == content


def test_infer_names_an_annotation_file_that_is_not_json(capsys, tmp_path, tiny_coco):
    ann_file = tmp_path / 'ann.json'
    ann_file.write_text('{"images": [')
    code, _, err = run_tool(capsys, 'infer.py', DEMO_CONFIG, tmp_path / 'none.pth',
                            tiny_coco['data_root'] + '/val', '--out-dir', tmp_path / 'out', '--ann-file', ann_file)
    assert code == 2 and err.splitlines()[-1].startswith(f'error: annotation file {ann_file} is not JSON (')
    assert not (tmp_path / 'out').exists()


@pytest.mark.slow
def test_a_benchmark_whose_rows_all_failed_exits_non_zero(capsys, tmp_path):
    other_model = save_model(CSP_CONFIG, tmp_path / 'csp.pth')  # weights of another network: every row fails
    code, out, err = run_tool(capsys, 'benchmark.py', DEMO_CONFIG, other_model, '--resolutions', '64', '--repeats', '1',
                              '--warmup', '0', '--min-repeat-time', '0', '--work-dir', tmp_path / 'out')
    assert code == f'error: all 2 rows failed or timed out (their errors: {tmp_path / "out" / "results.md"})'
    assert f'wrote {tmp_path / "out" / "results.md"}' in out  # the rows and their errors are kept


def test_infer_refuses_an_out_dir_it_cannot_write_before_the_model_loads(capsys, monkeypatch, tmp_path, tiny_coco):
    locked = tmp_path / 'read_only'
    locked.mkdir()
    real_access = os.access
    # Tests run as root here, whom chmod does not stop: the folder is made unwritable for os.access instead.
    monkeypatch.setattr(os, 'access', lambda path, mode: str(path) != str(locked) and real_access(path, mode))
    code, _, err = run_tool(capsys, 'infer.py', DEMO_CONFIG, tmp_path / 'none.pth', tiny_coco['data_root'] + '/val',
                            '--out-dir', locked / 'out')
    assert code == 2
    assert err.splitlines()[-1] == (f'error: --out-dir {locked / "out"}: no write permission in {locked}; give a '
                                    'writable folder')  # not the missing checkpoint: nothing was loaded
