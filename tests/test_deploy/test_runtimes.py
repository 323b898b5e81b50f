"""ONNX Runtime and OpenVINO run the exported detector of every head type as PyTorch does; the benchmark's runtime
variants carry their parity and time the same network scope as mmdet and the engine; a missing runtime is skipped in
one line; tools/deploy/infer_runtime.py writes tools/infer.py's detections at the test's geometry (YOLOv4-CSP's
per-image rectangles too), and they score PyTorch's AP on generated data."""
import copy
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from mmengine.dataset import pseudo_collate
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope

from mmdet.registry import DATASETS

from parnet_det.apis import build_detector
from parnet_det.apis.inferencer import MediaInferencer, load_predictor
from parnet_det.apis.results import CocoIds
from parnet_det.apis.runtime_predictor import load_runtime_predictor
from parnet_det.benchmark import BenchmarkSettings, load_model_specs, run_benchmark
from parnet_det.benchmark.inputs import synthetic_images
from parnet_det.benchmark.variants import TIMED_SCOPES, build_runtime, timed_scope, timed_step
from parnet_det.benchmark.workload import control_workload
from parnet_det.datasets import generate_synthetic_coco
from parnet_det.deploy import RUNTIMES, RuntimeDetector, runtime_missing
from parnet_det.deploy.onnx_export import INPUT_NAME, OUTPUT_NAMES
from parnet_det.inference import DenseDetectorNetwork, DetectorEngine
from parnet_det.utils.config import load_config

from ..helpers import TINY_ARCH, coco_stats, load_tool

pytest.importorskip('onnxscript', reason='ONNX export needs requirements/deploy.txt')
onnx = pytest.importorskip('onnx', reason='ONNX export needs requirements/deploy.txt')
REPO = Path(__file__).resolve().parents[2]
INSTALLED = [runtime for runtime in RUNTIMES if runtime_missing(runtime) is None]
QUICK = dict(warmup=0, iters=1, repeats=2, min_repeat_s=0, threads=1)
SIDE = 128

# One tiny detector per head type: YOLOX (the demo), YOLOv4-CSP, YOLOR's implicit head, RTMDet (mmdet's config).
HEADS = {
    'yolox': ('configs/demo/yolo_parnet_tiny_synthetic.py', {}),
    'yolov4_csp': ('configs/yolov4_csp_coco.py', {
        'model.backbone.widen_factor': 0.25, 'model.backbone.deepen_factor': 0.34, 'model.neck.widen_factor': 0.25,
        'model.neck.in_channels': [64, 128, 256], 'model.bbox_head.widen_factor': 0.25,
        'model.bbox_head.num_classes': 3}),
    'yolor_implicit': ('configs/yolor_parnet_xl_coco.py', {
        'model.neck.in_channels': [32, 64, 128],
        'model.neck.reduced_channels': [32, 64, 128], 'model.neck.widen_factor': 0.125,
        'model.bbox_head.widen_factor': 0.125, 'model.bbox_head.num_classes': 3}),
    'rtmdet': ('configs/reference/rtmdet_m_coco.py', {
        'model.backbone.deepen_factor': 0.167, 'model.backbone.widen_factor': 0.125,
        'model.neck.in_channels': [32, 64, 128], 'model.neck.out_channels': 32, 'model.neck.num_csp_blocks': 1,
        'model.bbox_head.in_channels': 32, 'model.bbox_head.feat_channels': 32, 'model.bbox_head.num_classes': 3}),
}


def images(count=2, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (96, SIDE, 3), dtype=np.uint8) for _ in range(count)]


def engine_with_detections(head):
    """The tiny detector folded in an engine at SIDE px, its head set (the benchmark's controlled workload) so
    that a few hundred boxes reach NMS and about 50 survive."""
    config, options = HEADS[head]
    cfg = load_config(str(REPO / config), options)
    if head == 'yolor_implicit':
        cfg.model.backbone.arch = dict(TINY_ARCH)  # a preset's name in the config: replaced, not merged
    torch.manual_seed(0)
    engine = DetectorEngine(build_detector(cfg), cfg, 'cpu', input_size=(SIDE, SIDE))
    if head != 'yolor_implicit':  # (the controlled workload knows plain prediction convs only)
        batch, metas = engine.preprocess(images())
        control_workload(engine.model, batch, metas, candidates=300, detections=50)
    return engine


@pytest.fixture(scope='module', params=list(HEADS))
def exported(request, tmp_path_factory):
    """(engine, path of its graph with a dynamic batch) per head type."""
    engine = engine_with_detections(request.param)
    path = str(tmp_path_factory.mktemp('runtime') / f'{request.param}.onnx')
    RuntimeDetector.export(engine, 'onnxruntime' if 'onnxruntime' in INSTALLED else 'openvino', path,
                           dynamic_batch=True)
    return engine, path


def assert_same_detections(got, expected, box_atol=0.2):
    """Per image the same number of detections, each within ``box_atol`` px of one of the other side's with
    its label and score (order is not compared: near-equal scores may swap). Boxes of random heads reach
    hundreds of pixels, where fp32 kernels differ by ~1e-4 relative, and NMS between boxes whose overlap sits
    at the IoU threshold may keep the other one: at most 5% of the detections may lack their twin."""
    for mine, theirs in zip(got, expected):
        mine, theirs = mine.pred_instances, theirs.pred_instances
        # NMS between random boxes overlapping at the IoU threshold may keep one more or one fewer.
        assert abs(len(mine) - len(theirs)) <= max(1, len(theirs) // 50)
        # Multi-label heads keep one box with several labels, and clipped boxes of random heads coincide: a twin
        # has the same label, the nearest box and score.
        boxes = torch.cdist(mine.bboxes, theirs.bboxes, p=float('inf'))
        scores = (mine.scores[:, None] - theirs.scores[None]).abs()
        nearest = (boxes + 1e3 * scores + 1e6 * (mine.labels[:, None] != theirs.labels[None])).argmin(dim=1)
        rows = torch.arange(len(mine))
        twin = (boxes[rows, nearest] < box_atol) & (scores[rows, nearest] < 1e-4) & (
            mine.labels == theirs.labels[nearest])
        assert twin.float().mean() >= 0.95


@pytest.mark.slow
@pytest.mark.parametrize('runtime', INSTALLED)
def test_each_runtime_gives_pytorchs_outputs_and_detections_for_every_head_type(exported, runtime):
    engine, path = exported
    detector = RuntimeDetector.load(engine, runtime, path)
    pixels, _ = detector.pixels(images(3, seed=1))  # a batch size other than the traced one
    parity = detector.parity(pixels)
    assert parity.passed, parity
    assert parity.boxes_rel < 1e-5 and parity.scores_max_abs < 1e-4
    # End to end, the head's own post-processing (the engine: mmdet's predict_by_feat for YOLOv4-CSP, YOLOR
    # and RTMDet heads, the batched YOLOX one) gives the same detections.
    assert_same_detections(detector(images()), engine(images()))


@pytest.mark.slow
@pytest.mark.skipif(not INSTALLED, reason='no runtime installed (requirements/deploy.txt)')
@pytest.mark.parametrize('head', ['yolox', 'yolov4_csp', 'rtmdet'])
def test_the_network_mode_times_the_same_scope_in_mmdet_the_engine_and_a_runtime(head):
    """The benchmark's timed network step of every variant runs the graph's scope: from the same letterboxed
    pixels, mmdet (data preprocessor, _forward, decoding), the engine (normalisation, network, decoding) and the
    runtime's graph return the same dense boxes and scores; each row says so in its timed_scope."""
    engine = engine_with_detections(head)  # folded, its outputs in range (the controlled workload)
    model, cfg, cpu = engine.model, engine.cfg, torch.device('cpu')
    pictures = synthetic_images(SIDE, 2)
    runners = [model, engine, build_runtime(model, cfg, 'train', INSTALLED[0], SIDE, 2, None)]
    outputs = []
    for runner in runners:
        assert timed_scope(runner, 'network') == TIMED_SCOPES['network']
        step, context = timed_step(runner, 'network', pictures, cpu, 'fp32')
        with context():
            outputs.append([output.clone() for output in step()])
    for boxes, scores in outputs[1:]:
        torch.testing.assert_close(boxes, outputs[0][0], rtol=1e-4, atol=0.05)
        torch.testing.assert_close(scores, outputs[0][1], rtol=1e-4, atol=1e-4)


@pytest.mark.slow
def test_a_fixed_size_graph_is_refused_where_the_test_gives_each_image_its_rectangle(exported):
    """A graph exported at one size would see another image than tools/test.py for a RectLetterbox config."""
    engine, path = exported
    if engine.preprocess.settings.letterbox is None:
        pytest.skip('a fixed-size config: its graph is of that size')
    per_image = DetectorEngine(engine.model, engine.cfg, 'cpu', deploy=False)  # the config's own geometry
    with pytest.raises(ValueError, match=rf'takes a fixed {SIDE}x{SIDE} input, but the config letterboxes each image'):
        RuntimeDetector.load(per_image, INSTALLED[0], path)


# Two OpenVINO sessions released in the other order than opened, then a signal handled in Python. With a Core per
# session this process died of a segmentation fault at the signal (each Core's CPU plugin swaps the main thread's
# alternate signal stack; see parnet_det.deploy.runtimes.openvino_core), and so did the test process a hundred tests
# after the INT8 tests.
RELEASED_OUT_OF_ORDER = """
import gc, os, signal, sys
from parnet_det.deploy import open_session
first, second = open_session('openvino', sys.argv[1]), open_session('openvino', sys.argv[1])
del first
gc.collect()
del second
gc.collect()
signal.signal(signal.SIGTERM, lambda *args: print('handled'))
os.kill(os.getpid(), signal.SIGTERM)
"""


def one_conv_graph(path):
    """A graph with the sessions' interface (pixels in, boxes and scores out) and one convolution: enough for a
    runtime to compile, in no time."""
    weight = onnx.numpy_helper.from_array(np.ones((4, 3, 3, 3), np.float32), 'weight')
    graph = onnx.helper.make_graph(
        [onnx.helper.make_node('Conv', [INPUT_NAME, 'weight'], [OUTPUT_NAMES[0]], pads=[1, 1, 1, 1]),
         onnx.helper.make_node('Sigmoid', [OUTPUT_NAMES[0]], [OUTPUT_NAMES[1]])], 'one_conv',
        [onnx.helper.make_tensor_value_info(INPUT_NAME, onnx.TensorProto.FLOAT, [1, 3, 8, 8])],
        [onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, [1, 4, 8, 8]) for name in OUTPUT_NAMES],
        [weight])
    onnx.save(onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid('', 17)]), str(path))
    return str(path)


@pytest.mark.skipif('openvino' not in INSTALLED, reason='openvino is not installed')
def test_openvino_sessions_released_out_of_order_leave_signal_handlers_working(tmp_path):
    path = one_conv_graph(tmp_path / 'one_conv.onnx')
    result = subprocess.run([sys.executable, '-c', RELEASED_OUT_OF_ORDER, path], cwd=REPO, capture_output=True,
                            text=True, timeout=600)
    assert (result.returncode, result.stdout.strip()) == (0, 'handled'), result.stderr[-2000:]


def test_rtmdet_decode_is_that_of_mmdets_predict_by_feat():
    """Every (prior, class) pair of mmdet's RTMDetHead.predict_by_feat (no threshold, no NMS) has the decoded
    box (clipped as mmdet clips) and score of DenseDetectorNetwork.decode_rtmdet."""
    config, options = HEADS['rtmdet']
    model = build_detector(load_config(str(REPO / config), options))
    head = model.bbox_head
    head.test_cfg.update(score_thr=-1.0, nms_pre=10**6, max_per_img=10**6, nms=dict(type='nms', iou_threshold=1.0))
    inputs = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        for conv in [*head.rtm_cls, *head.rtm_reg]:
            conv.weight.normal_(0, 0.1)
        outputs = model._forward(inputs)
        boxes, scores = DenseDetectorNetwork(model).boxes_and_scores(outputs)
        expected = head.predict_by_feat(*outputs, batch_img_metas=[dict(img_shape=(64, 96))], rescale=False)[0]
    num_priors = sum((64 // s) * (96 // s) for s in (8, 16, 32))
    assert boxes.shape == (1, num_priors, 4) and len(expected) == num_priors * head.num_classes
    clipped = torch.stack([boxes[0, :, 0].clamp(0, 96), boxes[0, :, 1].clamp(0, 64), boxes[0, :, 2].clamp(0, 96),
                           boxes[0, :, 3].clamp(0, 64)], 1)
    for box, score, label in zip(expected.bboxes, expected.scores, expected.labels):
        same_score = (scores[0, :, label] - score).abs() < 1e-6  # (a few priors may score alike)
        assert ((clipped[same_score] - box).abs().amax(dim=1) < 1e-4).any()


def test_a_missing_runtime_is_skipped_in_one_line(monkeypatch):
    monkeypatch.setitem(sys.modules, 'openvino', None)  # as if not installed
    lines = []
    specs = load_model_specs(str(REPO / 'configs/demo/yolo_parnet_tiny_synthetic.py'))
    settings = BenchmarkSettings(resolutions=(64, ), variants=('eager', 'openvino'), candidates=0, **QUICK)
    rows = run_benchmark(specs, settings, log=lines.append)
    assert [line for line in lines if 'openvino' in line] == [
        'openvino fp32: skipped: openvino is not installed (pip install -r requirements/deploy.txt)']
    assert {row['variant'] for row in rows} == {'eager'} and all(row['status'] == 'ok' for row in rows)


@pytest.mark.slow
@pytest.mark.skipif(not INSTALLED, reason='no runtime installed (requirements/deploy.txt)')
def test_runtime_rows_carry_parity_export_and_compile_times_and_the_same_workload():
    specs = load_model_specs(str(REPO / 'configs/demo/yolo_parnet_tiny_synthetic.py'),
                             baselines=[str(REPO / 'configs/demo/yolo_cspdarknet53s_tiny_synthetic.py')])
    settings = BenchmarkSettings(resolutions=(96, ), variants=('eager', *INSTALLED), candidates=80, **QUICK)
    rows = run_benchmark(specs, settings, log=lambda line: None)
    assert all(row['status'] == 'ok' for row in rows)
    runtime_rows = [row for row in rows if row['variant'] in INSTALLED]
    assert len(runtime_rows) == 4 * len(INSTALLED)
    for row in runtime_rows:
        assert row['runtime'] == row['variant'] and row['runtime_version']
        assert row['export_s'] > 0 and row['compile_s'] > 0 and 'mmcv NMS' in row['end2end_nms']
        assert row['parity_passed'] and row['parity_boxes_max_abs'] <= row['parity_box_atol']
        assert row['parity_scores_max_abs'] <= row['parity_score_atol']
        assert abs(row['nms_candidates_per_image'] - 80) <= 2
    eager = {(row['model'], row['mode']): row for row in rows if row['variant'] == 'eager'}
    for row in runtime_rows:
        if row['mode'] == 'end2end':
            assert abs(row['detections_per_image'] - eager[row['model'], 'end2end']['detections_per_image']) <= 1


# The head families' test geometry at SIDE px: YOLOX's and RTMDet's fixed square, YOLOv4-CSP's RectLetterbox (each
# image centred in its own rectangle, a multiple of 64; a batch of several padded to the largest).
TOOL_GEOMETRY = {
    'yolox': {},
    'yolov4_csp': {'test_dataloader.dataset.pipeline.1.scale': (SIDE, SIDE),
                   'test_dataloader.dataset.pipeline.2.img_size': SIDE},
    'rtmdet': {'test_dataloader.dataset.pipeline.1.scale': (SIDE, SIDE),
               'test_dataloader.dataset.pipeline.2.size': (SIDE, SIDE)},
}
# Over a few dozen detections each: YOLOv4-CSP's and RTMDet's controlled candidates score low (their threshold, 0.001);
# the others' detections near 0.01 would be NMS near-ties between the random heads' boxes, hundreds of pixels wide,
# whose fp32 rounding differs between the runtimes by up to ~0.5 px.
TOOL_SCORE_THR = {'yolox': 0.05, 'yolov4_csp': 0.001, 'rtmdet': 0.001}
# Landscape, portrait, near-square: three rectangles under a RectLetterbox.
TOOL_IMAGE_SHAPES = ((96, 160), (150, 90), (100, 104))


@pytest.mark.slow
@pytest.mark.skipif(not INSTALLED, reason='no runtime installed (requirements/deploy.txt)')
@pytest.mark.parametrize('head', list(TOOL_GEOMETRY))
def test_the_runtime_tool_writes_the_detections_of_infer_py(head, tmp_path):
    """Same images, same checkpoint: the detections JSON of tools/deploy/infer_runtime.py is tools/infer.py's, for
    every head family at its test geometry (YOLOv4-CSP's: each image its own rectangle, the graph a dynamic height
    and width; batches of 2 mix shapes). Each image's detections: same count, labels, scores within 1e-3, boxes
    within 0.05 px + 3e-3 relative (the random head's boxes reach hundreds of pixels past the image, where fp32
    kernels differ by ~1e-3). The graph is exported once (tools/deploy/export_onnx.py) and every runtime runs it
    (--onnx), as a user running several runtimes does: an export takes 5-20 s here. The tool's own export (no
    --onnx) wraps the engine's network the same way (OnnxExportWrapper, export_wrapper); test_int8.py runs it
    through the tool."""
    config, options = HEADS[head]
    cfg = load_config(str(REPO / config), {**options, **TOOL_GEOMETRY[head]})
    config = str(tmp_path / f'{head}.py')
    cfg.dump(config)
    rng = np.random.default_rng(2)
    pictures = [rng.integers(0, 256, (*shape, 3), dtype=np.uint8) for shape in TOOL_IMAGE_SHAPES]
    torch.manual_seed(0)
    model = build_detector(cfg)
    batch, metas = DetectorEngine(copy.deepcopy(model), cfg, 'cpu').preprocess(pictures)
    if head == 'yolov4_csp':  # the test's rectangles (three, one per aspect ratio), not one square
        assert len({meta['pad_shape'] for meta in metas}) == 3
    control_workload(model, batch, metas, candidates=300, detections=50)
    checkpoint = str(tmp_path / 'tiny.pth')
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, checkpoint)
    folder = tmp_path / 'images'
    folder.mkdir()
    for index, picture in enumerate(pictures):
        cv2.imwrite(str(folder / f'{index}.png'), picture)
    common = [config, checkpoint, str(folder), '--score-thr', str(TOOL_SCORE_THR[head]), '--no-draw',
              '--batch-size', '2']
    load_tool('infer.py').main([*common, '--out-dir', str(tmp_path / 'torch'), '--device', 'cpu'])
    expected = by_image(tmp_path / 'torch')
    assert sum(map(len, expected.values())) > 30
    graph = str(tmp_path / 'graph.onnx')
    load_tool('deploy/export_onnx.py').main([config, checkpoint, graph, '--dynamic-batch', '--no-check'])
    for runtime in INSTALLED:
        load_tool('deploy/infer_runtime.py').main([*common, '--out-dir', str(tmp_path / runtime), '--runtime', runtime,
                                                   '--onnx', graph])
        got = by_image(tmp_path / runtime)
        assert got.keys() == expected.keys()
        for name, records in got.items():
            assert_same_records(records, expected[name], (runtime, name))


def assert_same_records(records, expected, where):
    """One to one: each detection has its own partner of the same class, score within 1e-3 and box within 0.05 px
    + 3e-3 relative (partners are matched, not ranks: near-equal scores may swap)."""
    assert len(records) == len(expected), where
    unmatched = list(expected)
    for record in records:
        partner = next((other for other in unmatched if other['category_id'] == record['category_id']
                        and abs(other['score'] - record['score']) < 1e-3
                        and np.allclose(record['bbox'], other['bbox'], atol=0.05, rtol=3e-3)), None)
        assert partner is not None, (where, record)
        unmatched.remove(partner)


def by_image(out_dir):
    records = json.loads((out_dir / 'detections.json').read_text())
    grouped = {}
    for record in sorted(records, key=lambda record: -record['score']):
        grouped.setdefault(record['file_name'], []).append(record)
    return grouped


# A detector that detects, cheaply: the demo detector at the tests' narrow ParNet width, neck and head,
# fitted to 4 generated 96 px images (one batch of all four, no augmentation) and evaluated on them. Measured on
# the 2-core VM: AP 0.183 (AP50 0.400) after STEPS steps; random weights 0.000.
STEPS, FIT_SIDE, AP_FLOOR = 50, 96, 0.05
NARROW = {'model.backbone.arch': TINY_ARCH, 'model.neck.in_channels': [32, 64, 128],
          'model.neck.reduced_channels': [32, 64, 128], 'model.neck.out_channels': 32,
          'model.bbox_head.in_channels': 32, 'model.bbox_head.feat_channels': 32}


@pytest.fixture(scope='module')
def fitted(tmp_path_factory):
    """(config, checkpoint, annotation file, image folder) of the demo detector fitted to its images."""
    data_root = generate_synthetic_coco(str(tmp_path_factory.mktemp('fit_coco')), num_train=4, num_val=1,
                                        image_size=FIT_SIDE, seed=1)['data_root']
    cfg = load_config(str(REPO / HEADS['yolox'][0]), NARROW)
    cfg.test_dataloader.dataset.update(data_root=data_root, ann_file='annotations/instances_train.json',
                                       data_prefix=dict(img='train/'))
    cfg.test_dataloader.dataset.pipeline[1].scale = (FIT_SIDE, FIT_SIDE)  # Resize: the engine's input size too
    with DefaultScope.overwrite_default_scope('mmdet'):
        dataset = DATASETS.build(cfg.test_dataloader.dataset)
        batch = pseudo_collate([dataset[index] for index in range(len(dataset))])
    torch.manual_seed(0)
    model = build_detector(cfg).train()
    optimizer = build_optim_wrapper(model, dict(optimizer=dict(type='AdamW', lr=0.005, weight_decay=0.0)))
    for _ in range(STEPS):
        model.train_step(batch, optimizer)
    checkpoint = str(tmp_path_factory.mktemp('fit') / 'fitted.pth')
    torch.save(dict(state_dict=model.state_dict(), meta=dict(dataset_meta=dict(classes=dataset.metainfo['classes']))),
               checkpoint)
    return cfg, checkpoint, str(Path(data_root) / 'annotations/instances_train.json'), str(Path(data_root) / 'train')


def box_ap(predict, dataset_meta, ann_file, images, out_dir):
    """COCO box AP of ``predict``'s detections (score >= 0.01) of ``images`` against ``ann_file``."""
    MediaInferencer(predict, dataset_meta, str(out_dir), 0.01, 4, draw=False, coco_ids=CocoIds(ann_file))([images])
    return coco_stats(ann_file, json.loads((out_dir / 'detections.json').read_text()))[0]


@pytest.mark.slow
@pytest.mark.skipif(not INSTALLED, reason='no runtime installed (requirements/deploy.txt)')
def test_each_runtime_scores_pytorchs_ap_on_generated_data(fitted, tmp_path):
    """Deliverable 4 of issue 27: fp32, each runtime within 0.5 AP points of PyTorch, for a detector whose AP is
    far above that margin (with random weights both would be 0 and the test could not fail)."""
    cfg, checkpoint, ann_file, images = fitted
    expected = box_ap(*load_predictor(cfg, checkpoint, 'cpu', score_thr=0.01), ann_file, images, tmp_path / 'torch')
    assert expected >= AP_FLOOR
    for runtime in INSTALLED:
        got = box_ap(*load_runtime_predictor(cfg, checkpoint, runtime, score_thr=0.01), ann_file, images,
                     tmp_path / runtime)
        assert abs(got - expected) <= 0.005, (runtime, got, expected)

