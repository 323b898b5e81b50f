import json

import pytest

from parnet_det.benchmark.paper_table import merge, read_ap_results

from ..helpers import run_tool


def _ap_record(model, resolution, ap50, deploy=False):
    return dict(model=model, config=f'configs/{model}.py', checkpoint='epoch_12.pth', resolution=[resolution] * 2,
                deploy=deploy, tta=False,
                metrics={'coco/bbox_mAP': ap50 / 2, 'coco/bbox_mAP_50': ap50, 'coco/bbox_mAP_75': ap50 / 3,
                         'coco/bbox_mAP_s': 0.1, 'coco/bbox_mAP_m': 0.2, 'coco/bbox_mAP_l': -1.0})


def _bench_row(model, resolution, mode, fps, form='deploy'):
    return dict(model=model, resolution=resolution, mode=mode, images_per_s=fps, ms_per_batch_median=1000 / fps,
                precision='fp32', batch_size=1, form=form, backbone_depth=9, params=2_500_000,
                flops_per_image=400_000_000)


@pytest.fixture
def inputs(tmp_path):
    ap = tmp_path / 'ap_results.jsonl'
    records = [_ap_record('parnet', 128, 0.30), _ap_record('parnet', 160, 0.40), _ap_record('baseline', 128, 0.20),
               _ap_record('parnet', 128, 0.35)]  # re-evaluated: the last record wins
    ap.write_text('\n'.join(json.dumps(r) for r in records) + '\n')
    bench = tmp_path / 'results.json'
    rows = [_bench_row('parnet', 128, 'network', 50.0), _bench_row('parnet', 128, 'end2end', 30.0),
            _bench_row('parnet', 160, 'network', 40.0), _bench_row('baseline', 128, 'network', 45.0),
            _bench_row('parnet', 128, 'network', 10.0, form='train')]
    bench.write_text(json.dumps(dict(environment=dict(Device='CPU (2 threads), no CUDA device'), rows=rows)))
    return ap, bench


def test_merge_puts_ap_next_to_the_matching_speed(inputs):
    ap, bench = inputs
    rows = merge(read_ap_results([str(ap)]), json.loads(bench.read_text())['rows'])
    by_key = {(r['model'], r['resolution']): r for r in rows}
    assert set(by_key) == {('parnet', 128), ('parnet', 160), ('baseline', 128)}
    parnet = by_key[('parnet', 128)]
    assert parnet['AP50'] == 0.35 and parnet['fps_network'] == 50.0 and parnet['fps_end2end'] == 30.0
    assert parnet['depth'] == 9 and parnet['APl'] is None  # -1 from pycocotools: no large object
    assert by_key[('parnet', 160)]['fps_end2end'] is None


@pytest.mark.slow
def test_report_tool_writes_the_table_and_plot(inputs, tmp_path, capsys):
    ap, bench = inputs
    out = tmp_path / 'report'
    code, stdout, err = run_tool(capsys, 'report.py', '--ap', ap, '--benchmark', bench, '--out', out, '--baseline',
                                 'baseline')
    assert code == 0, err[-3000:]
    table = (out / 'report.md').read_text()
    assert '| parnet | 9 | 2.50 | 0.40 | 128 | 50.0 | 30.0 | 17.5 | 35.0 | 11.7 | 10.0 | 20.0 |  |' in table
    # The regime answer: parnet's network 50 img/s against the baseline's 45 at 128 px, batch 1, mmdet's path.
    # One repeat per row (rows of an older run): no spread, and no claim.
    assert '| network | fp32 | 128 | 1 | - | 22.22 (mmdet) | **1.11** no spread (one repeat) (mmdet) |' in table
    # Per runtime (rows of an older run: mmdet's path), FPS over the baseline's in that runtime, no published AP.
    assert '## CPU (2 threads), no CUDA device: mmdet (model._forward / test_step), fp32, network' in table
    assert ('| parnet | 128 | 2.50 | 0.40 | 20.00 (20.00-20.00) | 50.0 (50.0-50.0) | 1.11 no spread (one repeat) | - |'
            in table)
    for name in ('ap_vs_fps.png', 'latency_vs_resolution.png', 'throughput_vs_batch.png', 'latency_per_runtime.png'):
        assert (out / name).read_bytes().startswith(b'\x89PNG')
    assert 'wrote' in stdout


@pytest.mark.slow
def test_report_refuses_files_of_the_wrong_kind(inputs, tmp_path, capsys):
    ap, bench = inputs
    code, _, err = run_tool(capsys, 'report.py', '--ap', bench, '--benchmark', bench, '--out', tmp_path / 'r')
    assert code == 2 and 'not a tools/test.py AP record' in err


def test_merge_takes_the_asked_variant_and_reads_rows_without_one_as_mmdet():
    records = [_ap_record('parnet', 128, 0.30)]
    legacy = _bench_row('parnet', 128, 'network', 50.0)  # written before --variants existed
    graphed = dict(_bench_row('parnet', 128, 'network', 80.0), variant='streams+cuda_graph')
    assert merge(records, [graphed, legacy])[0]['fps_network'] == 50.0
    assert merge(records, [legacy, graphed], variant='streams+cuda_graph')[0]['fps_network'] == 80.0
