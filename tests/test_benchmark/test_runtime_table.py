"""The deployers' table: rows grouped per runtime, ratios within a runtime, the published AP quoted as such."""
import pytest

from parnet_det.benchmark import BenchmarkSettings
from parnet_det.benchmark.model_stats import PARTS
from parnet_det.benchmark.published import PUBLISHED_AP
from parnet_det.benchmark.report import benchmark_meta
from parnet_det.benchmark.rows import (
    MODE_TITLES,
    add_baseline_ratios,
    measured,
    parity_failures,
    parity_status,
    path_label,
)
from parnet_det.benchmark.runtime_table import by_runtime, runtime_latency_plot, runtime_tables
from parnet_det.benchmark.tables import render_markdown
from parnet_det.benchmark.variants import TIMED_SCOPES


def _row(model, variant, resolution, repeats, group):
    median = sorted(repeats)[len(repeats) // 2]
    return dict(model=model, hardware='cpu', resolution=resolution, batch_size=1, precision='fp32', form='deploy',
                mode='network', variant=variant, path=path_label(variant, 'fp32'), with_cp=None, timing_group=group,
                ms_per_batch_repeats=repeats, ms_per_batch_median=median, ms_per_batch_min=min(repeats),
                ms_per_batch_max=max(repeats), images_per_s=1000 / median, params=5e6, flops_per_image=2e9,
                status='ok')


@pytest.fixture
def rows():
    # The baseline is slower than RTMDet-l in PyTorch and faster in OpenVINO: a ratio across runtimes would mix
    # the two answers.
    rows = [_row('yolov4_csp_coco', 'eager', 320, [20.0, 22.0, 21.0], 'e320'),
            _row('rtmdet_l_coco', 'eager', 320, [10.0, 11.0, 12.0], 'e320'),
            _row('yolov4_csp_coco', 'openvino', 320, [5.0, 5.0, 5.0], 'o320'),
            _row('rtmdet_l_coco', 'openvino', 320, [10.0, 10.0, 10.0], 'o320'),
            _row('yolov4_csp_coco', 'openvino', 512, [12.0, 12.0, 12.0], 'o512'),
            _row('rtmdet_l_coco', 'openvino', 512, [6.0, 6.0, 6.0], 'o512')]
    add_baseline_ratios(rows, 'yolov4_csp_coco')
    return rows


def reported(rows):
    """The rows with the size fields results.md also reports (the runtime table has no need of them)."""
    sizes = {f'{kind}_{part}': 1e6 for kind in ('params', 'flops') for part in PARTS}
    return [dict(row, backbone_depth=11, workload='controlled', **sizes) for row in rows]


@pytest.fixture
def meta():
    settings = BenchmarkSettings(resolutions=(320, 512), variants=('eager', 'openvino'))
    return benchmark_meta(['tools/benchmark.py'], settings, 'yolov4_csp_coco')


def test_rows_are_grouped_per_runtime_and_ordered_by_input_size(rows):
    groups = by_runtime(rows)
    assert list(groups) == [('cpu', 'network', 'PyTorch eager, fp32'), ('cpu', 'network', 'OpenVINO, fp32')]
    assert [(r['model'], r['resolution']) for r in groups['cpu', 'network', 'OpenVINO, fp32']] == [
        ('rtmdet_l_coco', 320), ('yolov4_csp_coco', 320), ('rtmdet_l_coco', 512), ('yolov4_csp_coco', 512)]


def test_each_ratio_is_to_the_baseline_in_the_same_runtime_and_size(rows):
    tables = runtime_tables(rows)
    eager, openvino = tables.split('## cpu: PyTorch eager, fp32, network')[1].split('## cpu: OpenVINO, fp32, network')
    # Paired round by round: 20/10, 22/11, 21/12.
    assert '| rtmdet_l_coco | 320 | 5.00 | 2.00 | 11.00 (10.00-12.00) | 90.9 (83.3-100.0) | 2.00 (1.75-2.00) faster |' \
        in eager
    assert '| rtmdet_l_coco | 320 | 5.00 | 2.00 | 10.00 (10.00-10.00) | 100.0 (100.0-100.0) | 0.50 (0.50-0.50) slower' \
        in openvino
    assert '| rtmdet_l_coco | 512 | 5.00 | 2.00 | 6.00 (6.00-6.00) | 166.7 (166.7-166.7) | 2.00 (2.00-2.00) faster' \
        in openvino


def test_the_published_ap_is_quoted_with_its_source_and_labelled_not_measured(rows):
    tables = runtime_tables(rows)
    assert '| published AP, not measured (data; source) |' in tables
    quoted = PUBLISHED_AP['rtmdet_l_coco']
    assert f'| {quoted.ap:.1f} ({quoted.data}; {quoted.source}) |' in tables
    assert quoted.source.startswith('mmdet') and PUBLISHED_AP['yolov4_csp_coco'].source.startswith('Scaled-YOLOv4')
    # A model with no published figure gets none, not a number from elsewhere.
    other = [dict(row, model='yolov4_csp_parnet_xl_coco') for row in rows[:1]]
    assert runtime_tables(other).splitlines()[-1].endswith('| - |')


def test_the_latency_plot_has_a_panel_per_runtime(rows):
    assert runtime_latency_plot(rows).startswith(b'\x89PNG')


def test_a_row_names_its_path_in_words_and_never_tensorrt():
    label = path_label('channels_last+max_autotune+cuda_graph', 'fp16')
    assert label == 'channels-last + torch.compile max-autotune + CUDA graphs, fp16'
    assert 'TensorRT' not in label and path_label('onnxruntime', 'fp32') == 'ONNX Runtime, fp32'


def test_a_row_whose_parity_failed_is_kept_out_of_every_table_and_ratio(rows, meta):
    """Marked by its status (its timing kept), it is in no table, neither side of a ratio, and named once."""
    failing = dict(rows[2], parity_passed=False, parity_boxes_max_abs=30.0, parity_box_atol=0.05,
                   parity_scores_max_abs=1e-6, parity_score_atol=1e-3)  # the OpenVINO baseline at 320 px
    failing.update(parity_status(failing))
    assert failing['status'] == 'parity_failed' and 'boxes 30 px (tolerance 0.05)' in failing['error']
    assert parity_status(rows[3]) == dict(status='ok')
    table_rows = [dict(row) for row in rows]
    table_rows[2] = failing
    add_baseline_ratios(table_rows, 'yolov4_csp_coco')
    assert failing not in measured(table_rows)
    # RTMDet-l in OpenVINO at 320 px has no baseline left to be compared with; the other ratios stand.
    assert table_rows[3]['fps_ratio_to_baseline'] is None and failing['fps_ratio_to_baseline'] is None
    assert table_rows[1]['fps_ratio_to_baseline'] == pytest.approx(2.0)
    openvino = runtime_tables(table_rows).split('## cpu: OpenVINO, fp32, network')[1]
    assert '| yolov4_csp_coco | 320 |' not in openvino and '| rtmdet_l_coco | 320 |' in openvino
    assert '| yolov4_csp_coco | 320 |' not in render_markdown(meta, reported(table_rows)).split('## Not measured')[0]
    assert parity_failures(table_rows) == ('1 row(s) failed their runtime parity with PyTorch and are kept out of '
                                           'every table and ratio: yolov4_csp_coco openvino 320px network')
    assert parity_failures(rows) is None
    # A row written before parity was a status (status 'ok', parity_passed False) is kept out too.
    assert dict(failing, status='ok') not in measured([dict(failing, status='ok')])


def test_the_tables_say_what_is_inside_the_timer_and_mark_rows_of_the_narrower_scope(rows, meta):
    assert 'normalisation, backbone + neck + head and box decoding; no score threshold, no NMS' in (
        MODE_TITLES['network'])
    tables = runtime_tables(rows)
    # These rows, like docs/benchmarks/cpu_runtimes', carry no timed_scope: PyTorch's were timed without
    # normalisation and (but for YOLOX) decoding; the runtimes' were not narrower.
    eager, openvino = tables.split('## cpu: PyTorch eager, fp32, network')[1].split('## cpu: OpenVINO, fp32, network')
    assert 'Timed with a narrower scope' in eager and 'Timed with a narrower scope' not in openvino
    now = [dict(row, timed_scope=TIMED_SCOPES['network']) for row in rows]
    assert 'narrower scope' not in runtime_tables(now) and 'narrower scope' not in render_markdown(meta, reported(now))
