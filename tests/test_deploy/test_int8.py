"""INT8 on the CPU: each runtime's quantized graph runs with the fp32 graph's outputs, quantizes the convolutions
only (the rest fp32), keeps the named convolutions in float, is cached per graph, calibration and options; its AP on
a trained detector stays near fp32's while a graph calibrated on blank images fails that check; the variants,
settings and refusals of the benchmark and tools/deploy/infer_runtime.py; the per-operator profile."""
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from parnet_det.apis import build_detector
from parnet_det.benchmark import BenchmarkSettings, check_settings, load_model_specs, run_benchmark
from parnet_det.benchmark.workload import control_workload
from parnet_det.deploy import (
    KEEP_FLOAT,
    RUNTIMES,
    Int8Options,
    RuntimeDetector,
    RuntimeVariant,
    calibration_images,
    open_session,
    runtime_missing,
)
from parnet_det.deploy.profiling import profile_operators
from parnet_det.deploy.quantize import float_convs
from parnet_det.deploy.runtime_accuracy import box_ap, val_images
from parnet_det.inference import DetectorEngine
from parnet_det.utils.config import load_config

from ..helpers import TINY_ARCH, load_tool
from .test_runtimes import fitted  # noqa: F401 (the fixture: the same fitting, not a copy)

onnx = pytest.importorskip('onnx', reason='INT8 needs requirements/deploy.txt')
pytest.importorskip('onnxscript', reason='ONNX export needs requirements/deploy.txt')
REPO = Path(__file__).resolve().parents[2]
CONFIG = str(REPO / 'configs/demo/yolo_parnet_tiny_synthetic.py')
INT8_RUNTIMES = [runtime for runtime in RUNTIMES if runtime_missing(runtime, 'int8') is None]
SIDE = 64
# The demo detector at the tests' narrow widths: a graph that exports, quantizes and runs in seconds.
NARROW = {'model.backbone.arch': TINY_ARCH, 'model.neck.in_channels': [32, 64, 128],
          'model.neck.reduced_channels': [32, 64, 128], 'model.neck.out_channels': 32,
          'model.bbox_head.in_channels': 32, 'model.bbox_head.feat_channels': 32}
# The fitted detector's INT8 AP within this of its fp32 AP in each runtime. Measured on the 2-core VM (AP over its
# 4 images, 0.001 steps): fp32 0.113, INT8 0.084 in ONNX Runtime and 0.129 in OpenVINO; calibrated on blank images
# instead, 0.001 in both.
INT8_AP_TOLERANCE = 0.05


def pictures(count, side=SIDE, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (side, side, 3), dtype=np.uint8) for _ in range(count)]


@pytest.fixture(scope='module')
def graph(tmp_path_factory):
    """(engine, fp32 graph with a dynamic batch) of the narrow demo detector, seeded initial weights, its head set
    so that a hundred boxes in range reach NMS (the benchmark's controlled workload)."""
    cfg = load_config(CONFIG, NARROW)
    torch.manual_seed(0)
    engine = DetectorEngine(build_detector(cfg), cfg, 'cpu', input_size=(SIDE, SIDE))
    batch, metas = engine.preprocess(pictures(2))
    control_workload(engine.model, batch, metas, candidates=100, detections=20)
    path = str(tmp_path_factory.mktemp('int8') / 'model.onnx')
    RuntimeDetector.export(engine, INT8_RUNTIMES[0], path, dynamic_batch=True)
    return engine, path


def conv_weights(path):
    """Conv node name -> the name of its weight initializer."""
    return {node.name: node.input[1] for node in onnx.load(path).graph.node if node.op_type == 'Conv'}


def quantized_activations(runtime, path):
    """Where the graph's activation quantizers sit: ONNX Runtime's, each Q -> DQ pair named 'conv' where a Conv
    writes its input or reads its output (else by the ops around it); OpenVINO's, the types of the nodes reading
    each FakeQuantize."""
    if runtime == 'onnxruntime':
        nodes = onnx.load(path).graph.node
        readers, producers = {}, {out: node for node in nodes for out in node.output}
        for node in nodes:
            for tensor in node.input:
                readers.setdefault(tensor, []).append(node)
        places = set()
        for node in nodes:
            if node.op_type == 'QuantizeLinear':
                dequantized = [reader for reader in readers[node.output[0]] if reader.op_type == 'DequantizeLinear']
                after = {reader.op_type for dq in dequantized for reader in readers.get(dq.output[0], [])}
                before = producers[node.input[0]].op_type if node.input[0] in producers else 'input'
                places.add('conv' if 'Conv' in after or before == 'Conv' else f'{before} -> {sorted(after)}')
        return places
    import openvino as ov  # noqa: PLC0415 (a test of the OpenVINO graph, which only it reads)
    model = ov.Core().read_model(path)
    return {target.get_node().get_type_name() for op in model.get_ordered_ops()
            if op.get_type_name() == 'FakeQuantize' for target in op.output(0).get_target_inputs()}


@pytest.mark.skipif(not INT8_RUNTIMES, reason='no INT8 runtime installed (requirements/deploy.txt)')
@pytest.mark.parametrize('runtime', INT8_RUNTIMES)
def test_an_int8_graph_runs_with_the_fp32_outputs_and_quantizes_the_convolutions_only(graph, runtime, tmp_path):
    engine, path = graph
    fp32 = RuntimeDetector.load(engine, runtime, path)
    int8 = RuntimeDetector.load(engine, runtime, path, precision='int8', calibration=pictures(4),
                                cache_dir=str(tmp_path))
    pixels, _ = fp32.pixels(pictures(3, seed=1))  # a batch size other than the calibration's
    for got, expected in zip(int8.network(pixels), fp32.network(pixels)):
        assert got.shape == expected.shape and got.dtype == expected.dtype == torch.float32
        assert torch.isfinite(got).all()
    parity = int8.parity(pixels)
    assert parity.passed, parity
    assert parity.scores_max_abs > 1e-4  # it is another graph, not the fp32 one again
    fields = int8.fields()
    assert fields['runtime_precision'] == 'int8' and fields['calibration_images'] == 4
    assert fields['calibration_s'] > 0 and 'int8: every convolution' in fields['int8_scope']
    # (ParNet's fusion blocks are grouped convolutions: OpenVINO's GroupConvolution, ONNX's Conv with groups.)
    expected = {'conv'} if runtime == 'onnxruntime' else {'Convolution', 'GroupConvolution'}
    assert quantized_activations(runtime, int8.quantized.path) == expected


@pytest.mark.skipif(not INT8_RUNTIMES, reason='no INT8 runtime installed (requirements/deploy.txt)')
def test_the_float_sets_name_the_sse_gates_and_the_first_and_last_convolutions(graph, tmp_path):
    engine, path = graph
    weights = conv_weights(path)
    sse = float_convs(path, ['sse'])
    gates = [name for name, module in engine.model.named_modules() if name.endswith('se_gate')]
    assert len(sse) == len(gates) > 0 and all('.se_gate.' in weights[name] for name in sse)
    first_last = {weights[name] for name in float_convs(path, ['first_last'])}
    # The stem (its conv and its gate read the pixels) and YOLOX's prediction convs of 3 levels (cls, reg, obj).
    assert {weight for weight in first_last if 'backbone.stem.0.' in weight} == {
        'network.detector.backbone.stem.0.fused_conv.weight', 'network.detector.backbone.stem.0.se_gate.weight'}
    assert sum('multi_level_conv_' in weight for weight in first_last) == 9 == len(first_last) - 2
    runtime = INT8_RUNTIMES[0]
    kept = RuntimeDetector.load(engine, runtime, path, precision='int8', calibration=pictures(2),
                                int8=Int8Options(keep_float=('first_last', )), cache_dir=str(tmp_path))
    assert len(kept.quantized.float_convs) == 11 and 'kept fp32: ' + KEEP_FLOAT['first_last'] in kept.quantized.scope
    if runtime == 'onnxruntime':  # their weights stay float: no DequantizeLinear feeds them
        dequantized = {node.output[0] for node in onnx.load(kept.quantized.path).graph.node
                       if node.op_type == 'DequantizeLinear'}
        for node in onnx.load(kept.quantized.path).graph.node:
            if node.op_type == 'Conv':
                assert (node.input[1] in dequantized) == (node.name not in kept.quantized.float_convs)


@pytest.mark.skipif(not INT8_RUNTIMES, reason='no INT8 runtime installed (requirements/deploy.txt)')
def test_a_quantized_graph_is_cached_per_graph_calibration_and_options(graph, tmp_path):
    engine, path = graph
    runtime = INT8_RUNTIMES[0]
    load = lambda images, options=Int8Options(): RuntimeDetector.load(
        engine, runtime, path, precision='int8', calibration=images, int8=options, cache_dir=str(tmp_path))
    first, again = load(pictures(2)), load(pictures(2))
    assert not first.quantized.cached and again.quantized.cached and again.quantized.path == first.quantized.path
    others = [load(pictures(3)), load(pictures(2), Int8Options(keep_float=('sse', )))]
    assert len({first.quantized.path, *(other.quantized.path for other in others)}) == 3
    assert not any(other.quantized.cached for other in others)
    assert not [name for name in os.listdir(tmp_path) if name.startswith('.')]  # no partial file left


@pytest.mark.parametrize('variant, parsed', [
    ('onnxruntime', RuntimeVariant('onnxruntime')),
    ('openvino-int8', RuntimeVariant('openvino', 'int8')),
    ('onnxruntime-int8+parallel', RuntimeVariant('onnxruntime', 'int8', ('parallel', ))),
    ('openvino+tensor_parallel+unpinned', RuntimeVariant('openvino', 'fp32', ('tensor_parallel', 'unpinned'))),
    ('eager', None), ('channels_last+compile', None), ('mmdet', None),
])
def test_runtime_variants_name_runtime_precision_and_settings(variant, parsed):
    assert RuntimeVariant.parse(variant) == parsed


def test_int8_is_refused_where_it_cannot_run_in_one_line(graph, tmp_path):
    with pytest.raises(ValueError, match=r'^openvino has no setting parallel; its settings: tensor_parallel, '
                       r'unpinned$'):
        check_settings(BenchmarkSettings(variants=('openvino+parallel', )))
    with pytest.raises(ValueError, match='int8 is no PyTorch precision here: INT8 runs in the runtimes, as the '
                       'variants onnxruntime-int8 and openvino-int8'):
        check_settings(BenchmarkSettings(variants=('eager', ), precisions=('int8', )))
    engine, _ = graph
    out = tmp_path / 'model.onnx'
    with pytest.raises(ValueError, match='INT8 needs calibration images'):
        RuntimeDetector.export(engine, 'onnxruntime', str(out), precision='int8')
    assert not out.exists()  # refused before the export
    with pytest.raises(ValueError, match='choose from fp32, int8'):
        RuntimeDetector.export(engine, 'onnxruntime', str(out), precision='fp16')


def test_infer_runtime_refuses_int8_without_val_images_before_any_work(tmp_path, capsys, monkeypatch):
    tool = load_tool('deploy/infer_runtime.py')
    built = []
    monkeypatch.setattr('parnet_det.apis.runtime_predictor.load_predictor', lambda *args, **kwargs: built.append(1))
    image = tmp_path / 'image.png'
    image.write_bytes(b'')
    checkpoint = tmp_path / 'model.pth'
    checkpoint.write_bytes(b'')
    common = [CONFIG, str(checkpoint), str(image), '--runtime', 'onnxruntime', '--out-dir', str(tmp_path / 'out')]
    with pytest.raises(SystemExit) as exit_info:
        tool.main([*common, '--precision', 'int8', '--cfg-options',
                   f'val_dataloader.dataset.data_root={tmp_path}/nowhere/'])
    assert exit_info.value.code == 2 and not built
    error = capsys.readouterr().err.strip()
    assert error.startswith("error: INT8 calibration needs the config's val images, and ") and '\n' not in error
    with pytest.raises(SystemExit) as exit_info:
        tool.main([*common, '--calibration-images', '8'])
    assert exit_info.value.code == 2 and '--calibration-images and --int8-cache are for --precision int8' in \
        capsys.readouterr().err


def test_calibration_takes_val_images_evenly_spaced(tiny_coco):
    options = {'val_dataloader.dataset.data_root': tiny_coco['data_root'] + '/'}
    cfg = load_config(CONFIG, options)
    every = [image['img_path'] for image in val_images(cfg)]
    assert len(every) == 4
    assert calibration_images(cfg, 2) == [every[0], every[3]]
    assert calibration_images(cfg, 300) == every  # the val set whole where smaller


@pytest.mark.skipif(not INT8_RUNTIMES, reason='no INT8 runtime installed (requirements/deploy.txt)')
@pytest.mark.parametrize('runtime', INT8_RUNTIMES)
def test_stream_parallel_settings_give_the_same_outputs(graph, runtime):
    engine, path = graph
    pixels, _ = RuntimeDetector.load(engine, runtime, path).pixels(pictures(1))
    default = open_session(runtime, path, threads=2)(pixels)
    for option in {'onnxruntime': ['parallel'], 'openvino': ['tensor_parallel', 'unpinned']}[runtime]:
        session = open_session(runtime, path, threads=2, options=[option])
        assert session.options == (option, )
        for got, expected in zip(session(pixels), default):
            torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-4)


@pytest.mark.skipif(not INT8_RUNTIMES, reason='no INT8 runtime installed (requirements/deploy.txt)')
@pytest.mark.parametrize('runtime', INT8_RUNTIMES)
def test_the_profile_times_each_operator_type(graph, runtime):
    engine, path = graph
    pixels, _ = RuntimeDetector.load(engine, runtime, path).pixels(pictures(1))
    profile = profile_operators(runtime, path, pixels, runs=3, threads=1)
    by_type = {entry.op_type: entry for entry in profile.entries}
    convs = by_type['Conv' if runtime == 'onnxruntime' else 'Convolution']
    assert convs.ms > 0 and convs.calls > 0
    assert profile.entries == sorted(profile.entries, key=lambda entry: -entry.ms)
    assert 0 < profile.operators_ms and profile.total_ms > 0
    assert '| operator | ms per run |' in profile.table()


@pytest.fixture(scope='module')
def fitted_val(request):
    """A detector that detects, cheaply: test_runtimes.py's fitted one, its val set its 4 fitted images."""
    cfg, checkpoint, ann_file, _ = request.getfixturevalue('fitted')
    cfg = cfg.copy()
    cfg.val_dataloader = cfg.test_dataloader
    cfg.val_evaluator = dict(cfg.val_evaluator, ann_file=ann_file)
    return cfg, checkpoint


@pytest.mark.slow
@pytest.mark.skipif(not INT8_RUNTIMES, reason='no INT8 runtime installed (requirements/deploy.txt)')
def test_int8_ap_of_a_trained_detector_is_near_fp32_and_a_blank_calibration_fails(fitted_val, tmp_path):
    """Accuracy is INT8's parity check: on the fitted detector (AP far above the tolerance) INT8 stays within
    INT8_AP_TOLERANCE of fp32 in each runtime, from the same images through the same post-processing; calibrated on
    blank images (every activation range one grey), the same check fails."""
    cfg, checkpoint = fitted_val
    engine = DetectorEngine(build_detector(cfg, checkpoint), cfg, 'cpu')
    images = val_images(cfg)
    path = str(tmp_path / 'model.onnx')
    RuntimeDetector.export(engine, INT8_RUNTIMES[0], path, dynamic_batch=True)
    blank = [np.full((96, 96, 3), 114, np.uint8)] * len(images)
    for runtime in INT8_RUNTIMES:
        fp32 = box_ap(RuntimeDetector.load(engine, runtime, path), cfg, images)['ap']
        assert fp32 >= 2 * INT8_AP_TOLERANCE
        calibrated = box_ap(RuntimeDetector.load(engine, runtime, path, precision='int8',
                                                 calibration=calibration_images(cfg)), cfg, images)['ap']
        assert abs(calibrated - fp32) <= INT8_AP_TOLERANCE, (runtime, calibrated, fp32)
        broken = box_ap(RuntimeDetector.load(engine, runtime, path, precision='int8', calibration=blank), cfg,
                        images)['ap']
        assert abs(broken - fp32) > INT8_AP_TOLERANCE, (runtime, broken, fp32)


@pytest.mark.slow
@pytest.mark.skipif(not INT8_RUNTIMES, reason='no INT8 runtime installed (requirements/deploy.txt)')
def test_infer_runtime_int8_writes_the_detections_of_a_calibrated_graph(fitted_val, tmp_path, capsys):
    cfg, checkpoint = fitted_val
    config = str(tmp_path / 'fitted.py')
    cfg.dump(config)
    images = str(Path(cfg.val_dataloader.dataset.data_root) / 'train')
    tool = load_tool('deploy/infer_runtime.py')
    for runtime in INT8_RUNTIMES:
        tool.main([config, checkpoint, images, '--runtime', runtime, '--precision', 'int8', '--no-draw',
                   '--out-dir', str(tmp_path / runtime), '--score-thr', '0.05', '--int8-cache', str(tmp_path)])
        out = capsys.readouterr().out
        assert 'int8: calibrated on 4 val images in' in out and '4 images in' in out and '(int8)' in out
        assert json.loads((tmp_path / runtime / 'detections.json').read_text())


@pytest.mark.slow
@pytest.mark.skipif(not INT8_RUNTIMES, reason='no INT8 runtime installed (requirements/deploy.txt)')
def test_int8_benchmark_rows_carry_calibration_and_their_errors(tiny_coco):
    """The INT8 rows' parity records the quantization's errors (on random weights as large as a broken graph's:
    accuracy is checked on trained detectors) and fails only on outputs that are not finite."""
    specs = load_model_specs(CONFIG, cfg_options={'val_dataloader.dataset.data_root': tiny_coco['data_root'] + '/'})
    settings = BenchmarkSettings(resolutions=(64, ), variants=tuple(f'{runtime}-int8' for runtime in INT8_RUNTIMES),
                                 candidates=100, warmup=0, iters=1, repeats=2, min_repeat_s=0, threads=1)
    rows = run_benchmark(specs, settings, log=lambda line: None)
    assert len(rows) == 2 * len(INT8_RUNTIMES) and all(row['status'] == 'ok' for row in rows)
    for row in rows:
        assert row['runtime_precision'] == 'int8' and row['path'].endswith(', int8')
        assert row['calibration_images'] == 4 and row['calibration_data'] == "4 val images of the config"
        assert row['calibration_s'] > 0 and row['parity_passed'] and row['parity_box_atol'] == 'inf'
        assert 0 < row['parity_boxes_rel'] < 1 and 0 < row['parity_scores_max_abs'] < 1


def test_the_accuracy_tool_refuses_a_config_without_val_images_before_building(tmp_path, capsys, monkeypatch):
    built = []
    monkeypatch.setattr('parnet_det.deploy.runtime_accuracy.build_detector', lambda *args: built.append(1))
    with pytest.raises(SystemExit) as exit_info:
        load_tool('deploy/int8_accuracy.py').main([
            CONFIG, str(tmp_path / 'model.pth'), '--out', str(tmp_path / 'records.jsonl'), '--cfg-options',
            f'val_dataloader.dataset.data_root={tmp_path}/nowhere/'])
    error = capsys.readouterr().err.strip()
    assert exit_info.value.code == 2 and not built and not (tmp_path / 'records.jsonl').exists()
    assert error.startswith("error: INT8 calibration needs the config's val images, and ") and '\n' not in error


@pytest.mark.slow
@pytest.mark.skipif('onnxruntime' not in INT8_RUNTIMES, reason='onnxruntime is not installed')
def test_the_accuracy_tool_records_fp32_and_each_int8_form(fitted_val, tmp_path, capsys):
    cfg, checkpoint = fitted_val
    config = str(tmp_path / 'fitted.py')
    cfg.dump(config)
    out = tmp_path / 'records' / 'int8.jsonl'
    load_tool('deploy/int8_accuracy.py').main([config, checkpoint, '--runtimes', 'onnxruntime', '--int8', 'default',
                                               'keep_first_last_float', 'no_bias_correction', '--out', str(out)])
    records = [json.loads(line) for line in out.read_text().splitlines()]
    # no_bias_correction is OpenVINO's: not measured in ONNX Runtime.
    assert [(record['precision'], record['int8']) for record in records] == [
        ('fp32', None), ('int8', 'default'), ('int8', 'keep_first_last_float')]
    fp32 = records[0]['ap']
    for record in records[1:]:
        assert record['ap_change'] == round(record['ap'] - fp32, 3) and record['calibration_images'] == 4
    assert records[2]['int8_scope'].endswith('kept fp32: ' + KEEP_FLOAT['first_last'])
    table = capsys.readouterr().out
    assert '| fitted | ParNet | onnxruntime | keep_first_last_float |' in table
