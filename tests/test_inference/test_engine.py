"""The inference engine gives mmdet's detections, on every fast path the CPU runs."""
import copy

import mmcv
import numpy as np
import pytest
import torch
from mmengine.config import ConfigDict

from mmdet.apis import inference_detector
from mmdet.registry import MODELS

from parnet_det.apis import init_detector_engine, load_config
from parnet_det.deploy import reparameterize_checkpoint
from parnet_det.inference import DetectorEngine, InferenceOptions
from parnet_det.utils.checkpoint import CheckpointMismatchError

from ..helpers import relative_error, requires_cuda, spread_yolox_scores

YOLO_CONFIG = 'configs/demo/yolo_parnet_tiny_synthetic.py'  # 160 px, letterboxed with pad value 114
RETINANET_CONFIG = 'tests/data/configs/retinanet_parnet_tiny.py'


def build(config, cfg_options=None):
    cfg = load_config(config, cfg_options)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    if hasattr(model.bbox_head, 'multi_level_conv_obj'):
        spread_yolox_scores(model)
    model.eval()
    model.cfg = cfg  # what mmdet's inference_detector reads the pipeline from
    return cfg, model


def images(*shapes, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in shapes]


def with_scaled_boxes(instances, box_scale):
    from mmengine.structures import InstanceData
    return InstanceData(bboxes=instances.bboxes * box_scale, scores=instances.scores, labels=instances.labels)


def assert_same_detections(got, expected, box_atol=1e-3, score_atol=1e-5):
    """Equal detection sets: every detection has one of the same class, box and score in the other.

    Order is not compared: scores equal up to float rounding may swap places."""
    assert len(got) == len(expected), f'{len(got)} detections against {len(expected)}'
    assert len(expected) > 0, 'nothing detected: the comparison would be empty'
    box_diff = (got.bboxes[:, None] - expected.bboxes[None]).abs().amax(-1)
    same = ((box_diff <= box_atol) & (got.labels[:, None] == expected.labels[None])
            & ((got.scores[:, None] - expected.scores[None]).abs() <= score_atol))
    assert same.any(1).all() and same.any(0).all(), f'{int((~same.any(1)).sum())} detections without a match'


@pytest.fixture(scope='module')
def yolo():
    return build(YOLO_CONFIG)


def block_images(*shapes_and_blocks, seed=0):
    """Random images made of k x k blocks of one colour each: resized by 1 / k, every pixel is exactly one
    block's colour (OpenCV's fixed-point and the engine's float interpolation agree to the bit)."""
    rng = np.random.default_rng(seed)
    return [np.repeat(np.repeat(rng.integers(0, 256, (h // k, w // k, 3), dtype=np.uint8), k, 0), k, 1)
            for (h, w), k in shapes_and_blocks]


def test_engine_gives_mmdet_detections(yolo, mmdet_scope):
    """Non-square images of other sizes than the 160 px input: resized by 1/2, 1/3 or not at all,
    letterboxed, boxes scaled back; one batch for the engine, one image at a time for mmdet."""
    cfg, model = yolo
    batch = block_images(((320, 200), 2), ((300, 480), 3), ((160, 100), 1), ((160, 160), 1))
    expected = inference_detector(model, batch)
    got = DetectorEngine(copy.deepcopy(model), cfg, 'cpu')(batch)
    for g, e, image in zip(got, expected, batch):
        assert g.ori_shape == e.ori_shape == image.shape[:2]
        assert g.scale_factor == pytest.approx(e.scale_factor)
        assert_same_detections(g.pred_instances, e.pred_instances)


@pytest.mark.parametrize('shapes', [[(100, 140)], [(200, 90), (120, 160)], [(240, 240), (240, 240)]])
def test_preprocessing_matches_the_pipeline(yolo, shapes, mmdet_scope):
    """Resize (bilinear, rounded as OpenCV does), letterbox and metainfo as mmdet's test pipeline."""
    cfg, model = yolo
    engine = DetectorEngine(copy.deepcopy(model), cfg, 'cpu')
    batch = images(*shapes)
    got, metas = engine.preprocess(batch)
    pipeline_data = [mmdet_pipeline(cfg, image) for image in batch]
    expected = model.data_preprocessor(dict(inputs=[d['inputs'] for d in pipeline_data],
                                            data_samples=[d['data_samples'] for d in pipeline_data]), False)
    assert got.shape == expected['inputs'].shape == (len(batch), 3, 160, 160)
    diff = (got - expected['inputs']).abs()
    # OpenCV interpolates in fixed point (11-bit weights), this in float: after rounding, a resized
    # pixel may differ by one level (about one in six of them here); any geometric mistake (offset,
    # corner alignment, wrong scale) moves values by tens of levels.
    assert diff.max() <= 1 and (diff > 0).float().mean() < 0.3, (diff.max(), (diff > 0).float().mean())
    for meta, sample in zip(metas, expected['data_samples']):
        assert meta['img_shape'] == sample.img_shape
        assert meta['ori_shape'] == sample.ori_shape
        np.testing.assert_allclose(meta['scale_factor'], sample.scale_factor)


def mmdet_pipeline(cfg, image):
    from mmcv.transforms import Compose
    steps = copy.deepcopy(cfg.test_dataloader.dataset.pipeline)
    steps[0] = dict(type='mmdet.LoadImageFromNDArray')
    steps = [step for step in steps if step['type'] != 'LoadAnnotations']
    return Compose(steps)(dict(img=image, img_id=0))


@pytest.mark.parametrize('variant', ['channels_last', 'streams', 'streams+channels_last'])
def test_fast_paths_give_eager_detections(yolo, variant):
    cfg, model = yolo
    batch = images((160, 160), (130, 170))
    expected = DetectorEngine(copy.deepcopy(model), cfg, 'cpu')(batch)
    got = DetectorEngine(copy.deepcopy(model), cfg, 'cpu', InferenceOptions.from_variant(variant))(batch)
    for g, e in zip(got, expected):
        assert_same_detections(g.pred_instances, e.pred_instances)


def test_bf16_stays_close(yolo):
    cfg, model = yolo
    fp32 = DetectorEngine(copy.deepcopy(model), cfg, 'cpu')
    bf16 = DetectorEngine(copy.deepcopy(model), cfg, 'cpu', InferenceOptions(precision='bf16'))
    batch, _ = fp32.preprocess(images((160, 160)))
    (boxes, scores), (boxes16, scores16) = fp32.network(batch), bf16.network(batch)
    assert boxes16.dtype == scores16.dtype == torch.float32  # decoded in fp32
    assert relative_error(boxes16, boxes) < 1e-2
    assert (scores16 - scores).abs().max() < 2e-2


@pytest.mark.slow
def test_compiled_network_gives_eager_boxes(yolo):
    cfg, model = yolo
    eager = DetectorEngine(copy.deepcopy(model), cfg, 'cpu')
    compiled = DetectorEngine(copy.deepcopy(model), cfg, 'cpu', InferenceOptions(compile=True, channels_last=True))
    batch, metas = eager.preprocess(images((160, 160), (150, 120)))
    (boxes, scores), (boxes_c, scores_c) = eager.network(batch), compiled.network(batch)
    # Inductor reorders floating-point sums: equal within rounding, not bitwise.
    assert (boxes_c - boxes).abs().max() < 1e-2
    assert (scores_c - scores).abs().max() < 1e-4
    for g, e in zip(compiled.postprocess((boxes_c, scores_c), metas), eager.postprocess((boxes, scores), metas)):
        assert_same_detections(g.pred_instances, e.pred_instances, box_atol=1e-2, score_atol=1e-4)


def test_other_single_stage_heads_use_mmdet_decoding(mmdet_scope):  # mmdet's inference_detector needs it
    """RetinaNet: normalisation, RGB order and padding in normalised space, then mmdet's predict_by_feat."""
    resize_to_128x160 = {'test_dataloader.dataset.pipeline.1.scale': (160, 128),
                         'model.test_cfg.score_thr': 0.0, 'model.test_cfg.nms_pre': 200}
    cfg, model = build(RETINANET_CONFIG, resize_to_128x160)
    batch = images((128, 160), (96, 160))
    expected = inference_detector(model, batch)
    engine = DetectorEngine(copy.deepcopy(model), cfg, 'cpu')
    assert not engine.decodes_boxes and engine.input_size == (128, 160)
    for g, e in zip(engine(batch[:1]), expected[:1]):
        assert_same_detections(g.pred_instances, e.pred_instances, box_atol=1e-3, score_atol=1e-5)
    # The second image is padded to 128 rows here, to 96 by mmdet (it pads each batch to its largest
    # image): the padding differs, hence only near-equal scores.
    got = engine(batch[1:])[0].pred_instances
    best = expected[1].pred_instances.scores.max().item()
    assert len(got) and got.scores.max().item() == pytest.approx(best, abs=0.05)


def test_deploy_checkpoint_loads_folded(yolo, tmp_path):
    cfg, model = yolo
    checkpoint = str(tmp_path / 'train.pth')
    torch.save(dict(state_dict=model.state_dict(), meta={}), checkpoint)
    deployed = str(tmp_path / 'deploy.pth')
    reparameterize_checkpoint(copy.deepcopy(cfg), checkpoint, deployed)
    batch = images((160, 160))
    from_train = init_detector_engine(YOLO_CONFIG, checkpoint, 'cpu')(batch)[0].pred_instances
    from_deploy = init_detector_engine(YOLO_CONFIG, deployed, 'cpu')(batch)[0].pred_instances
    assert_same_detections(from_deploy, from_train, box_atol=1e-2, score_atol=1e-5)


def test_incompatible_checkpoint_is_named(tmp_path):
    _, baseline = build('configs/demo/yolo_cspdarknet53s_tiny_synthetic.py')
    checkpoint = str(tmp_path / 'cspdarknet.pth')
    torch.save(dict(state_dict=baseline.state_dict(), meta={}), checkpoint)
    with pytest.raises(CheckpointMismatchError, match='cspdarknet.pth does not fit the model of this config'):
        init_detector_engine(YOLO_CONFIG, checkpoint, 'cpu')


def test_bad_inputs_get_clear_errors(yolo, tmp_path):
    cfg, model = yolo
    with pytest.raises(ValueError, match='fp16 needs a CUDA device'):
        DetectorEngine(copy.deepcopy(model), cfg, 'cpu', InferenceOptions(precision='fp16'))
    with pytest.raises(ValueError, match='cuda_graph needs a CUDA device'):
        DetectorEngine(copy.deepcopy(model), cfg, 'cpu', InferenceOptions(cuda_graph=True))
    with pytest.raises(ValueError, match="unknown fast path 'graph'"):
        InferenceOptions.from_variant('streams+graph')
    engine = DetectorEngine(copy.deepcopy(model), cfg, 'cpu')
    corrupt = tmp_path / 'corrupt.jpg'
    corrupt.write_bytes(b'not a jpeg')
    with pytest.raises(ValueError, match='corrupt.jpg: not a readable image'):
        engine([str(corrupt)])
    with pytest.raises(ValueError, match='HxWx3 uint8'):
        engine([np.zeros((10, 10), np.uint8)])
    faster_rcnn = load_config('configs/parnet_in_mmdet/faster-rcnn_parnet_s_fpn_1x_coco.py')
    with pytest.raises(TypeError, match='FasterRCNN is not a single-stage detector'):
        DetectorEngine(MODELS.build(faster_rcnn.model), faster_rcnn, 'cpu')


def test_variant_names_round_trip():
    options = InferenceOptions.from_variant('streams+channels_last+compile', precision='bf16')
    assert options.parallel_streams and options.channels_last and options.compile and not options.cuda_graph
    assert InferenceOptions.from_variant('eager') == InferenceOptions()
    # max-autotune's kernels inside our CUDA graph: its own graphs off, which check() would refuse to nest.
    fastest = InferenceOptions.from_variant('channels_last+max_autotune+cuda_graph', precision='fp16')
    assert fastest.compile and fastest.cuda_graph and fastest.compile_mode == 'max-autotune-no-cudagraphs'


def test_image_paths_are_read(yolo, tmp_path):
    cfg, model = yolo
    image = images((160, 160))[0]
    path = str(tmp_path / 'image.png')
    mmcv.imwrite(image, path)
    engine = DetectorEngine(copy.deepcopy(model), cfg, 'cpu')
    assert_same_detections(engine([path])[0].pred_instances, engine([image])[0].pred_instances)


def test_mmdet_inference_api_works_with_the_configs(yolo):
    """mmdet's inference_detector swaps the first test step for LoadImageFromNDArray keeping its
    arguments: the project's test pipelines must not give CheckedLoadImageFromFile extra ones."""
    cfg, _ = yolo
    assert set(cfg.test_dataloader.dataset.pipeline[0]) <= {'type', 'backend_args'}
    xl = load_config('configs/yolo_parnet_xl_coco.py')
    assert set(xl.test_dataloader.dataset.pipeline[0]) <= {'type', 'backend_args'}
    assert isinstance(xl.model.test_cfg, ConfigDict)


def test_parallel_streams_on_another_backbone_is_a_no_op():
    cfg, model = build('configs/demo/yolo_cspdarknet53s_tiny_synthetic.py')
    batch = images((160, 160))
    expected = DetectorEngine(copy.deepcopy(model), cfg, 'cpu')(batch)[0].pred_instances
    got = DetectorEngine(copy.deepcopy(model), cfg, 'cpu', InferenceOptions(parallel_streams=True))(batch)
    assert_same_detections(got[0].pred_instances, expected)


@pytest.fixture
def without_tf32():
    """fp32 convolutions in full precision while the test runs.

    cuDNN runs fp32 convolutions in TF32 (10-bit mantissa) by default, and the
    eager and the fast paths get different kernels (channels-last, graph
    capture), each rounding differently: on the H100 one score differed by 1e-4
    (0.2378 against 0.2379). A tolerance wide enough for that would also pass
    a fast path that is really wrong by as much; in full fp32 the paths differ
    only in the order of fp32 sums, so the test keeps its tolerance and tests
    the paths, not TF32. (The new API only: mixed with the legacy ``allow_tf32`` flags torch
    refuses to read them.)
    """
    saved = torch.backends.cudnn.conv.fp32_precision, torch.backends.cuda.matmul.fp32_precision
    torch.backends.cudnn.conv.fp32_precision = torch.backends.cuda.matmul.fp32_precision = 'ieee'
    yield
    torch.backends.cudnn.conv.fp32_precision, torch.backends.cuda.matmul.fp32_precision = saved


@requires_cuda
@pytest.mark.parametrize('variant', ['streams', 'cuda_graph', 'streams+cuda_graph', 'channels_last+cuda_graph',
                                     'channels_last+max_autotune+cuda_graph'])
def test_cuda_fast_paths_give_eager_detections(yolo, variant, without_tf32):
    cfg, model = yolo
    eager = DetectorEngine(copy.deepcopy(model), cfg, 'cuda')
    engine = DetectorEngine(copy.deepcopy(model), cfg, 'cuda', InferenceOptions.from_variant(variant))
    # New images on every call: later calls replay the captured graph on them.
    for seed in range(3):
        batch = images((160, 160), (130, 170), seed=seed)
        for g, e in zip(engine(batch), eager(batch)):
            assert_same_detections(g.pred_instances, e.pred_instances, box_atol=1e-2, score_atol=1e-4)


@requires_cuda
@pytest.mark.parametrize('shapes', [[(160, 160)] * 3, [(200, 90), (120, 160)]])
def test_cuda_preprocessing_equals_the_cpu_one(yolo, shapes):
    """The upload through pinned memory, queued image by image, delivers every image whole."""
    cfg, model = yolo
    batch = images(*shapes)
    expected, expected_metas = DetectorEngine(copy.deepcopy(model), cfg, 'cpu').preprocess(batch)
    got, metas = DetectorEngine(copy.deepcopy(model), cfg, 'cuda').preprocess(batch)
    assert metas == expected_metas
    # Bilinear weights rounded differently on the two devices may move a resized pixel by one level.
    assert (got.cpu() - expected).abs().max() <= 1


@requires_cuda
def test_cuda_fp16_stays_close(yolo):
    cfg, model = yolo
    fp32 = DetectorEngine(copy.deepcopy(model), cfg, 'cuda')
    fp16 = DetectorEngine(copy.deepcopy(model), cfg, 'cuda', InferenceOptions(precision='fp16', cuda_graph=True))
    batch, _ = fp32.preprocess(images((160, 160)))
    (boxes, scores), (boxes16, scores16) = fp32.network(batch), fp16.network(batch)
    assert relative_error(boxes16, boxes) < 1e-2
    assert (scores16 - scores).abs().max() < 1e-2


def test_one_nms_call_keeps_images_apart(yolo):
    """Identical images in one batch: each keeps all its detections (no box suppresses one of another
    image), and they are the single image's."""
    cfg, model = yolo
    engine = DetectorEngine(copy.deepcopy(model), cfg, 'cpu')
    image = images((160, 160))[0]
    alone = engine([image])[0].pred_instances
    for result in engine([image, image, image]):
        assert_same_detections(result.pred_instances, alone)


def _per_image_reference(boxes, scores, metas, test_cfg):
    """mmdet's YOLOX post-processing, image by image (mmcv's batched_nms per image)."""
    from mmcv.ops import batched_nms
    from mmengine.structures import InstanceData
    results = []
    for image_boxes, image_scores, meta in zip(boxes, scores, metas):
        best, labels = image_scores.max(1)
        valid = best >= test_cfg.score_thr
        kept = image_boxes[valid] / image_boxes.new_tensor(meta['scale_factor']).repeat(2)
        dets, keep = batched_nms(kept, best[valid], labels[valid], test_cfg.nms)
        results.append(InstanceData(bboxes=kept[keep], scores=dets[:, -1], labels=labels[valid][keep]))
    return results


@pytest.mark.parametrize('nms', [dict(type='nms', iou_threshold=0.65),
                                 dict(type='soft_nms', iou_threshold=0.5, min_score=0.05)])
@pytest.mark.parametrize('score_thr', [0.3, 0.9])  # ~3300 or ~270 candidates per image: chunks of 1-3 or all 8
def test_batched_postprocessing_equals_the_per_image_one(nms, score_thr):
    from parnet_det.inference import postprocess_dense_detections
    gen = torch.Generator().manual_seed(0)
    corners = torch.rand(8, 4000, 2, generator=gen) * 600 - 20  # some boxes past the image's edge
    boxes = torch.cat([corners, corners + torch.rand(8, 4000, 2, generator=gen) * 80 + 2], dim=2)
    scores = torch.rand(8, 4000, 6, generator=gen) ** 3
    metas = [dict(scale_factor=(0.5 + i / 10, 0.4 + i / 10)) for i in range(8)]
    test_cfg = ConfigDict(score_thr=score_thr, nms=nms)
    got = postprocess_dense_detections(boxes, scores, metas, test_cfg)
    # Soft-NMS rescores by the IoU, computed on differently offset (so differently rounded) coordinates.
    score_atol = 1e-6 if nms['type'] == 'nms' else 1e-4
    for g, e in zip(got, _per_image_reference(boxes, scores, metas, test_cfg)):
        assert_same_detections(g, e, box_atol=1e-4, score_atol=score_atol)
        assert (g.scores[:-1] >= g.scores[1:]).all()


def test_postprocessing_limits_and_nms_types(yolo):
    from parnet_det.inference import postprocess_dense_detections
    cfg, model = yolo
    engine = DetectorEngine(copy.deepcopy(model), cfg, 'cpu')
    batch, metas = engine.preprocess(images((160, 160), (160, 160)))
    boxes, scores = engine.network(batch)
    limited = ConfigDict(engine.test_cfg, max_per_img=7)
    for result in postprocess_dense_detections(boxes, scores, metas, limited):
        assert len(result) == 7 and (result.scores[:-1] >= result.scores[1:]).all()
    doubled = [dict(meta, scale_factor=(2.0, 2.0)) for meta in metas]
    for full, half in zip(postprocess_dense_detections(boxes, scores, metas, engine.test_cfg),
                          postprocess_dense_detections(boxes, scores, doubled, engine.test_cfg)):
        assert_same_detections(half, with_scaled_boxes(full, box_scale=0.5))
    with pytest.raises(ValueError, match="'nms' or 'soft_nms'"):
        postprocess_dense_detections(boxes, scores, metas, ConfigDict(engine.test_cfg, nms=dict(type='nms_rotated')))


def test_batched_postprocessing_equals_the_heads_predict_by_feat(yolo):
    """The engine's post-processing of a batch of differently rescaled images against the head's own
    ``YOLOXHead.predict_by_feat`` on the same network outputs."""
    cfg, model = yolo
    engine = DetectorEngine(copy.deepcopy(model), cfg, 'cpu')
    batch, metas = engine.preprocess(images((160, 160), (120, 150), (90, 200), (300, 100)))
    with torch.inference_mode():
        head_outputs = engine.model._forward(batch)
        expected = engine.model.bbox_head.predict_by_feat(*head_outputs, batch_img_metas=metas, rescale=True)
    got = engine.postprocess(engine.network(batch), metas)
    assert len(got) == len(expected) == 4
    for g, e in zip(got, expected):
        assert_same_detections(g.pred_instances, e, box_atol=1e-3, score_atol=1e-6)
