"""Tools that produce nothing useful say so and exit non-zero; every parse error names its file (issue 26)."""
import pytest

from .helpers import run_tool


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
    code, _, err = run_tool(capsys, 'infer.py', 'configs/demo/yolo_parnet_tiny_synthetic.py', tmp_path / 'none.pth',
                            tiny_coco['data_root'] + '/val', '--out-dir', tmp_path / 'out', '--ann-file', ann_file)
    assert code == 2 and err.splitlines()[-1].startswith(f'error: annotation file {ann_file} is not JSON (')
    assert not (tmp_path / 'out').exists()
