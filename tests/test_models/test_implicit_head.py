"""YOLOR's implicit head: ImplicitA / ImplicitM around the prediction conv, folded exactly for deploy."""
import pytest
import torch
import torch.nn.functional as F

from parnet_det.apis import build_detector
from parnet_det.deploy.onnx_check import check_onnx_against_pytorch
from parnet_det.deploy.onnx_export import export_onnx
from parnet_det.deploy.reparameterize import reparameterize_checkpoint
from parnet_det.models.layers import ImplicitPredictionConv
from parnet_det.utils.config import load_config

from ..helpers import TINY_ARCH, randomize_norm_stats, relative_error

CONFIG = 'configs/yolor_parnet_xl_coco.py'


def tiny_config():
    """The config's detector with a narrow ParNet, neck and head."""
    cfg = load_config(CONFIG)
    cfg.model.backbone.arch = dict(TINY_ARCH)  # outputs 32, 64, 128 channels
    cfg.merge_from_dict({'model.neck.in_channels': [32, 64, 128], 'model.neck.reduced_channels': [32, 64, 128],
                         'model.neck.widen_factor': 0.125, 'model.bbox_head.widen_factor': 0.125,
                         'model.bbox_head.num_classes': 3})
    return cfg


def spread(block, seed=0):
    """Implicit vectors far from their initial 0 and 1, so that folding them is tested on real numbers."""
    gen = torch.Generator().manual_seed(seed)
    block.implicit_a.implicit.data.normal_(0, 1, generator=gen)
    block.implicit_m.implicit.data.normal_(1, 0.5, generator=gen)


def test_implicit_prediction_conv_is_m_times_conv_of_x_plus_a_and_folds_exactly():
    block = ImplicitPredictionConv(16, 24).double()
    spread(block)
    x = torch.randn(2, 16, 5, 7, dtype=torch.float64)
    a, m = block.implicit_a.implicit, block.implicit_m.implicit
    expected = m * F.conv2d(x + a, block.conv.weight, block.conv.bias)
    with torch.no_grad():
        torch.testing.assert_close(block(x), expected, rtol=1e-12, atol=0)
        block.switch_to_deploy()
        assert block.deploy and not hasattr(block, 'implicit_a') and not hasattr(block, 'implicit_m')
        torch.testing.assert_close(block(x), expected, rtol=1e-12, atol=1e-12)
    folded = ImplicitPredictionConv(16, 24, deploy=True).double()
    folded.load_state_dict(block.state_dict())  # strict: the folded form is one plain conv
    assert set(folded.state_dict()) == {'conv.weight', 'conv.bias'}


def test_yolor_detector_folds_and_its_deploy_checkpoint_loads_folded(tmp_path):
    model = build_detector(tiny_config())
    assert all(isinstance(conv, ImplicitPredictionConv) for conv in model.bbox_head.convs_pred)
    assert model.bbox_head.convs_bridge[0].activate.__class__.__name__ == 'SiLU'
    for conv in model.bbox_head.convs_pred:
        spread(conv)
    randomize_norm_stats(model)
    checkpoint = str(tmp_path / 'yolor.pth')
    torch.save(dict(state_dict=model.state_dict(), meta=dict(dataset_meta=dict(classes=('a', 'b', 'c')))),
               checkpoint)
    x = torch.randn(1, 3, 96, 128)
    with torch.no_grad():
        before = model.bbox_head(model.extract_feat(x))[0]
    deploy = str(tmp_path / 'yolor_deploy.pth')
    reparameterize_checkpoint(model.cfg, checkpoint, deploy)
    folded = build_detector(tiny_config(), deploy)  # strict loading
    assert all(conv.deploy for conv in folded.bbox_head.convs_pred)
    assert not any('implicit' in key for key in folded.state_dict())
    with torch.no_grad():
        after = folded.bbox_head(folded.extract_feat(x))[0]
    for original, deployed in zip(before, after):
        assert relative_error(deployed, original) <= 1e-5


@pytest.mark.slow
def test_yolor_detector_exports_to_onnx(tmp_path):
    cfg = tiny_config()
    model = build_detector(cfg)
    for conv in model.bbox_head.convs_pred:
        spread(conv)
    checkpoint = str(tmp_path / 'yolor.pth')
    torch.save(dict(state_dict=model.state_dict(), meta=dict(dataset_meta=dict(classes=('a', 'b', 'c')))), checkpoint)
    export = export_onnx(cfg, checkpoint, str(tmp_path / 'yolor.onnx'), input_size=(128, 160))
    check = check_onnx_against_pytorch(export.path, export.module)
    assert check.boxes_rel <= 1e-5 and check.scores_rel <= 1e-5 and check.label_differences == 0
