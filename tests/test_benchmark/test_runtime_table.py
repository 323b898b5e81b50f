"""The deployers' table: rows grouped per runtime, ratios within a runtime, the published AP quoted as such."""
import pytest

from parnet_det.benchmark.published import PUBLISHED_AP
from parnet_det.benchmark.rows import add_baseline_ratios, path_label
from parnet_det.benchmark.runtime_table import by_runtime, runtime_latency_plot, runtime_tables


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
