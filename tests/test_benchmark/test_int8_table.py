"""The INT8 pieces of the deployers' table: INT8 rows keep their own runtime section and ratios, say their calibration
and carry the AP change measured on a trained detector of their backbone (never the random-weight rows' own); the
accuracy table and ParNet's gap against the baseline."""
from parnet_det.benchmark.rows import add_baseline_ratios, path_label
from parnet_det.benchmark.runtime_table import (
    by_runtime,
    int8_accuracy_table,
    int8_ap_cell,
    int8_gap_lines,
    runtime_tables,
)

SCOPE = 'int8: every convolution (...); fp32: the rest'


def _row(model, backbone, variant, ms):
    return dict(model=model, backbone=backbone, hardware='cpu', resolution=320, batch_size=1, precision='fp32',
                form='deploy', mode='network', variant=variant, path=path_label(variant, 'fp32'), with_cp=None,
                timing_group=variant, ms_per_batch_repeats=[ms] * 3, ms_per_batch_median=ms, ms_per_batch_min=ms,
                ms_per_batch_max=ms, images_per_s=1000 / ms, params=5e6, flops_per_image=2e9, status='ok',
                **({'int8_scope': SCOPE, 'calibration_s': 12.5, 'calibration_images': 32,
                    'calibration_data': '32 random images'} if 'int8' in variant else {}))


def _record(model, backbone, runtime, int8, ap, change=None):
    record = dict(model=model, backbone=backbone, runtime=runtime, precision='int8' if int8 else 'fp32', int8=int8,
                  ap=ap, ap50=2 * ap, images=80)
    if int8:
        record.update(ap_change=change, ap50_change=2 * change, calibration_images=80, calibration_s=5.0)
    return record


RECORDS = [_record('parnet_tiny', 'ParNet', 'openvino', None, 0.243),
           _record('parnet_tiny', 'ParNet', 'openvino', 'default', 0.239, -0.004),
           _record('parnet_tiny', 'ParNet', 'openvino', 'keep_sse_float', 0.243, 0.0),
           _record('csp_tiny', 'CSPDarknet53s', 'openvino', None, 0.199),
           _record('csp_tiny', 'CSPDarknet53s', 'openvino', 'default', 0.197, -0.002)]


def test_int8_rows_have_their_own_section_ratios_calibration_and_measured_ap_change():
    rows = [_row('yolov4_csp_coco', 'CSPDarknet53s', 'openvino', 10.0),
            _row('yolov4_csp_parnet_s_coco', 'ParNet', 'openvino', 8.0),
            _row('yolov4_csp_coco', 'CSPDarknet53s', 'openvino-int8', 5.0),
            _row('yolov4_csp_parnet_s_coco', 'ParNet', 'openvino-int8', 5.0),
            _row('yolov4_csp_parnet_xl_csp_coco', 'ParNetCSP', 'openvino-int8', 4.0),
            _row('rtmdet_m_coco', 'CSPNeXt', 'openvino-int8', 2.5)]
    add_baseline_ratios(rows, 'yolov4_csp_coco')
    assert set(by_runtime(rows)) == {('cpu', 'network', 'OpenVINO, fp32'), ('cpu', 'network', 'OpenVINO, int8')}
    # INT8 against the baseline's INT8, not against fp32.
    assert rows[3]['fps_ratio_to_baseline'] == 1.0 and rows[1]['fps_ratio_to_baseline'] == 1.25
    text = runtime_tables(rows, RECORDS)
    int8, fp32 = text.split('## cpu: OpenVINO, fp32, network')  # (sections in the order of their first row)
    assert int8.count('## cpu: OpenVINO, int8, network') == 1
    assert 'calibration s' not in fp32 and f'INT8 graph: {SCOPE}. Calibration: 32 random images' in int8
    lines = {line.split(' | ')[0][2:]: line for line in int8.splitlines() if line.startswith('| ')}
    assert lines['yolov4_csp_parnet_s_coco'].endswith(' 12.5 (32) | -0.004 (parnet_tiny: 0.243 -> 0.239) |')
    assert lines['yolov4_csp_coco'].endswith('| -0.002 (csp_tiny: 0.199 -> 0.197) |')
    # ParNetCSP's blocks are ParNet's: its stand-in; a backbone without a trained detector says so.
    assert '-0.004 (parnet_tiny' in lines['yolov4_csp_parnet_xl_csp_coco']
    assert lines['rtmdet_m_coco'].endswith('| not measured (no trained detector of this backbone) |')
    # Another runtime's record is not this runtime's.
    assert int8_ap_cell(dict(rows[3], variant='onnxruntime-int8'), RECORDS).startswith('not measured')


def test_the_accuracy_table_and_the_gap_against_the_baseline():
    table = int8_accuracy_table(RECORDS).splitlines()
    assert len(table) == 2 + 3  # header, rule, one line per INT8 record
    assert table[2] == ('| parnet_tiny | ParNet | openvino | default | 0.243 | 0.239 | -0.004 | 0.486 | 0.478 | '
                        '80, 5.0 |')
    assert int8_gap_lines(RECORDS, 'csp_tiny') == [
        '- openvino: INT8 AP change parnet_tiny -0.004 (-0.002 against the baseline); csp_tiny -0.002']
    assert int8_gap_lines(RECORDS, 'another_baseline') == []
