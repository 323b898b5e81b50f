"""ONNX export of the tiny YOLO detector: onnxruntime gives PyTorch's boxes, scores and detections."""
import copy
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from mmdet.registry import MODELS

from parnet_det.apis import build_detector, load_config
from parnet_det.benchmark.workload import control_workload
from parnet_det.deploy import check_onnx_against_pytorch, export_onnx, reparameterize_checkpoint
from parnet_det.inference import BatchPreprocessor, PreprocessSettings, postprocess_dense_detections

from ..helpers import TINY_ARCH, load_tool, randomize_norm_stats, spread_yolox_scores
from .test_runtimes import HEADS, TOOL_GEOMETRY

onnx = pytest.importorskip('onnx', reason='ONNX export needs requirements/deploy.txt')
ort = pytest.importorskip('onnxruntime', reason='the ONNX check needs requirements/deploy.txt')
pytest.importorskip('onnxscript', reason='ONNX export needs requirements/deploy.txt')

REPO = Path(__file__).resolve().parents[2]
CONFIG = 'configs/demo/yolo_parnet_tiny_synthetic.py'  # 160 px, letterboxed with pad value 114
RETINANET_CONFIG = 'tests/data/configs/retinanet_parnet_tiny.py'
# A shallower ParNet: the exporter's time grows with the number of ops, not their width. And the
# normalisation of ImageNet-pretrained backbones, so that the graph's channel flip and mean / std are
# exercised (the YOLO configs feed raw BGR pixels).
CFG_OPTIONS = {
    'model.backbone.arch.stream_channels': list(TINY_ARCH['stream_channels']),
    'model.backbone.arch.final_channels': TINY_ARCH['final_channels'],
    'model.backbone.arch.num_blocks': list(TINY_ARCH['num_blocks']),
    'model.neck.in_channels': [*TINY_ARCH['stream_channels'][1:], TINY_ARCH['final_channels']],
    'model.data_preprocessor.mean': [123.675, 116.28, 103.53],
    'model.data_preprocessor.std': [58.395, 57.12, 57.375],
    'model.data_preprocessor.bgr_to_rgb': True,
}
CLI_CFG_OPTIONS = [f'{key}={value}' for key, value in CFG_OPTIONS.items()]
# onnxruntime differs from PyTorch by ~4e-4 px on boxes and ~3e-6 on scores for this model; PyTorch
# fp32 itself is ~3e-4 px and ~2e-6 off fp64 (channels-last ~3e-4 px off contiguous): room for other
# CPUs' rounding, and far below what a wrong channel order gives (~60 px).
BOX_ATOL, SCORE_ATOL = 5e-3, 1e-4


def calibrate_norm_stats(model, inputs):
    """Give every BatchNorm the statistics of its input on ``inputs``, as training does, so that each
    normalises to unit variance: with initial weights the image's signal fades layer by layer and the
    outputs hardly depend on the input (a wrong channel order would go unnoticed)."""
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.reset_running_stats()
            module.momentum = None  # a cumulative average: the statistics of this one batch
    model.train()
    with torch.no_grad():
        model(inputs, mode='tensor')
    model.eval()


def random_images(count, shape=(120, 160), seed=0):
    """HWC uint8 BGR images: landscape, so letterboxed to 160 x 160 they are padded below."""
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (*shape, 3), dtype=np.uint8) for _ in range(count)]


@pytest.fixture(scope='module')
def checkpoints(tmp_path_factory):
    """A training checkpoint of the tiny detector and its deploy form.

    Norms with non-trivial affine values (folding changes the weights) and statistics of pre-processed
    random images; the head's last convs small and random, so that scores spread around 0.25 and
    hundreds of boxes of moderate size reach NMS (the initial head's scores of ~1e-4 reach none)."""
    directory = tmp_path_factory.mktemp('onnx_checkpoints')
    cfg = load_config(CONFIG, CFG_OPTIONS)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    randomize_norm_stats(model)
    preprocess = BatchPreprocessor(PreprocessSettings.from_config(cfg), torch.device('cpu'))
    calibrate_norm_stats(model, preprocess(random_images(4, seed=1))[0])
    spread_yolox_scores(model, with_regression=True)
    train, deploy = directory / 'train.pth', directory / 'deploy.pth'
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, train)
    reparameterize_checkpoint(cfg, str(train), str(deploy))
    return str(train), str(deploy)


@pytest.fixture(scope='module')
def exported(checkpoints, tmp_path_factory):
    """The training checkpoint exported with a dynamic batch (folded on the way)."""
    out = tmp_path_factory.mktemp('onnx') / 'tiny.onnx'
    return export_onnx(CONFIG, checkpoints[0], str(out), batch_size=2, dynamic_batch=True, cfg_options=CFG_OPTIONS)


def test_the_graph_takes_pixels_and_returns_boxes_and_scores_with_a_dynamic_batch(exported):
    model = onnx.load(exported.path)
    dims = lambda value: [dim.dim_param or dim.dim_value for dim in value.type.tensor_type.shape.dim]
    assert [(value.name, dims(value)) for value in model.graph.input] == [('images', ['batch', 3, 160, 160])]
    num_priors = sum((160 // stride)**2 for stride in (8, 16, 32))
    assert [(value.name, dims(value)) for value in model.graph.output] == [
        ('boxes', ['batch', num_priors, 4]), ('scores', ['batch', num_priors, 5])]
    assert exported.input_shape == ('batch', 3, 160, 160) and exported.opset >= 18
    assert model.opset_import[0].version == exported.opset
    assert exported.module.network.backbone.deploy, 'the exported network is not folded'


@pytest.mark.parametrize('batch_size', [1, 3])
def test_onnxruntime_gives_pytorch_outputs_and_detections(exported, batch_size):
    check = check_onnx_against_pytorch(exported.path, exported.module, batch_size=batch_size, box_atol=BOX_ATOL,
                                       score_atol=SCORE_ATOL)
    assert check.batch_size == batch_size
    assert check.boxes_max_abs < BOX_ATOL and check.boxes_rel < 1e-5
    assert check.scores_max_abs < SCORE_ATOL and check.scores_rel < 1e-4
    assert min(check.pytorch_detections) > 100, 'too few detections for the comparison to mean much'
    assert check.onnx_detections == check.pytorch_detections
    assert check.detection_box_error < BOX_ATOL
    assert check.passed


def test_the_graph_normalises_letterboxed_bgr_pixels_as_the_inference_engine(exported):
    """ONNX on the letterboxed pixels == the PyTorch network on the engine's pre-processed batch."""
    settings = exported.module.settings
    assert settings.bgr_to_rgb and settings.mean is not None and settings.pad_pixel == (114.0, ) * 3
    image = random_images(1)[0]  # fits 160 x 160 as it is: no resize
    normalised, metas = BatchPreprocessor(settings, torch.device('cpu'))([image])
    with torch.inference_mode():
        expected = exported.module.network(normalised)
    pixels = torch.full((1, 3, 160, 160), 114.0)
    pixels[0, :, :120] = torch.from_numpy(image).permute(2, 0, 1)
    session = ort.InferenceSession(exported.path, providers=['CPUExecutionProvider'])
    run = lambda batch: [torch.from_numpy(output) for output in session.run(None, {'images': batch.numpy()})]
    boxes, scores = run(pixels)
    assert (boxes - expected[0]).abs().max() < BOX_ATOL and (scores - expected[1]).abs().max() < SCORE_ATOL
    got, want = (postprocess_dense_detections(*outputs, metas, exported.module.test_cfg)[0]
                 for outputs in ((boxes, scores), expected))
    assert len(got) == len(want) > 100
    # RGB pixels are not what the graph expects: the channel flip is in it.
    assert (run(pixels.flip(1))[0] - expected[0]).abs().max() > 1000 * BOX_ATOL


def test_the_check_fails_when_the_file_and_the_module_differ(exported):
    changed = copy.deepcopy(exported.module)
    changed.network.bbox_head.multi_level_conv_reg[0].bias.data += 0.01
    check = check_onnx_against_pytorch(exported.path, changed, box_atol=BOX_ATOL, score_atol=SCORE_ATOL)
    assert check.boxes_max_abs > 10 * BOX_ATOL and check.scores_max_abs < SCORE_ATOL
    assert not check.detections_match and not check.passed


def test_cli_exports_a_deploy_checkpoint_and_its_check_passes(checkpoints, tmp_path, capsys):
    out = tmp_path / 'deploy.onnx'
    out.write_bytes(b'an older export')  # replaced once the export has succeeded
    load_tool('deploy/export_onnx.py').main([CONFIG, checkpoints[1], str(out), '--shape', '128', '160',
                                             '--cfg-options', *CLI_CFG_OPTIONS])
    stdout = capsys.readouterr().out
    assert f'wrote {out}' in stdout and 'passed' in stdout and 'FAILED' not in stdout
    assert 'detections after NMS per image: onnx' in stdout
    model = onnx.load(str(out))
    assert [dim.dim_value for dim in model.graph.input[0].type.tensor_type.shape.dim] == [1, 3, 128, 160]
    assert sorted(path.name for path in tmp_path.iterdir()) == ['deploy.onnx']


def test_missing_checkpoint_is_refused_and_out_is_untouched(tmp_path, capsys):
    out = tmp_path / 'model.onnx'
    out.write_bytes(b'keep')
    with pytest.raises(FileNotFoundError, match='missing.pth'):
        export_onnx(CONFIG, str(tmp_path / 'missing.pth'), str(out))
    with pytest.raises(SystemExit) as exit_info:
        load_tool('deploy/export_onnx.py').main([CONFIG, str(tmp_path / 'missing.pth'), str(out)])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == f'error: checkpoint {tmp_path / "missing.pth"} does not exist'
    assert out.read_bytes() == b'keep' and len(list(tmp_path.iterdir())) == 1


def test_a_head_that_does_not_decode_in_the_network_is_refused(tmp_path):
    cfg = load_config(RETINANET_CONFIG)
    checkpoint = tmp_path / 'retinanet.pth'
    torch.save({'state_dict': build_detector(cfg).state_dict(), 'meta': {}}, checkpoint)
    out = tmp_path / 'retinanet.onnx'
    out.write_bytes(b'keep')
    with pytest.raises(ValueError, match='RetinaHead: only YOLOX-style heads'):
        export_onnx(RETINANET_CONFIG, str(checkpoint), str(out), input_size=(128, 128))
    assert out.read_bytes() == b'keep'


def test_a_failing_export_leaves_an_existing_out_untouched(checkpoints, tmp_path, monkeypatch):

    def export_then_fail(module, args, f, **kwargs):
        Path(f).write_bytes(b'half a graph')
        raise RuntimeError('the exporter failed')

    monkeypatch.setattr(torch.onnx, 'export', export_then_fail)
    out = tmp_path / 'model.onnx'
    out.write_bytes(b'keep')
    with pytest.raises(RuntimeError, match='the exporter failed'):
        export_onnx(CONFIG, checkpoints[0], str(out), cfg_options=CFG_OPTIONS)
    assert out.read_bytes() == b'keep'
    assert [path.name for path in tmp_path.iterdir()] == ['model.onnx'], 'the partial file was left behind'


def test_missing_deploy_requirements_are_named(exported, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, 'onnxruntime', None)  # makes `import onnxruntime` fail
    with pytest.raises(ImportError, match=r'onnxruntime.*pip install -r requirements/deploy\.txt'):
        check_onnx_against_pytorch(exported.path, exported.module)
    monkeypatch.setitem(sys.modules, 'onnxscript', None)
    with pytest.raises(ImportError, match=r'onnxscript.*pip install -r requirements/deploy\.txt'):
        export_onnx(CONFIG, 'any.pth', str(tmp_path / 'model.onnx'))



@pytest.mark.slow
def test_a_rect_letterbox_config_exports_any_rectangle_and_is_checked_at_two(tmp_path, capsys):
    """The YOLOv4-CSP family letterboxes each image to its own rectangle: without --shape its graph's height and
    width are dynamic (named, not numbers), and the CLI checks it at a landscape and a portrait rectangle (a
    narrow, shallow detector whose head is set to give NMS a few hundred candidates, as the benchmark sets it).

    The exporter's time grows with the number of ops, and under dynamic shapes Mish costs it most (its
    decomposition does symbolic shape arithmetic, ~0.1 s a Mish): one bottleneck per backbone stage (not up to 3),
    and ReLU for the neck's 41 Mish (its SPP, upsampling and concatenations stay); the backbone's and the head's
    Mish stay in the graph."""
    config_file, options = HEADS['yolov4_csp']
    shallow = {'model.backbone.deepen_factor': 0.01, 'model.neck.act_cfg': dict(type='ReLU')}
    cfg = load_config(str(REPO / config_file), {**options, **shallow, **TOOL_GEOMETRY['yolov4_csp']})
    config, checkpoint, out = (str(tmp_path / name) for name in ('narrow.py', 'narrow.pth', 'rect.onnx'))
    cfg.dump(config)
    torch.manual_seed(0)
    model = build_detector(cfg)
    batch, metas = BatchPreprocessor(PreprocessSettings.from_config(cfg), torch.device('cpu'))(
        [np.random.default_rng(0).integers(0, 256, (96, 128, 3), dtype=np.uint8)])
    control_workload(model, batch, metas, candidates=300, detections=50)
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, checkpoint)
    load_tool('deploy/export_onnx.py').main([config, checkpoint, out, '--dynamic-batch'])
    stdout = capsys.readouterr().out
    assert 'Bx3xHxW (dynamic B, H, W)' in stdout and stdout.count('  passed') == 3 and 'FAILED' not in stdout
    dims = onnx.load(out).graph.input[0].type.tensor_type.shape.dim
    assert [bool(dim.dim_param) for dim in dims] == [True, False, True, True]
