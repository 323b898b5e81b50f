
import pytest
import torch

from parnet_det.convert import ConversionError, convert_official, infer_arch, map_official_key
from parnet_det.models.backbones import ARCH_SETTINGS, ParNet
from parnet_det.models.classifiers import ParNetClassifier

from ..helpers import relative_error, run_tool
from ..official_reference import make_official_state_dict, official_forward, read_official_listing


@pytest.mark.parametrize('arch', sorted(ARCH_SETTINGS))
def test_every_official_key_is_consumed(arch):
    listing = read_official_listing(arch)
    assert all(map_official_key(key) is not None for key, _ in listing)
    state = make_official_state_dict(arch)
    stem_channels = min(64, ARCH_SETTINGS[arch]['stream_channels'][0])
    assert infer_arch(state) == dict(ARCH_SETTINGS[arch], stem_channels=stem_channels)
    converted, report = convert_official(state, form='classifier')
    assert report['unused'] == [] and report['preset'] == arch
    assert len(converted) == len(listing)
    ParNetClassifier(arch=arch).load_state_dict(converted, strict=True)


def test_converted_weights_reproduce_the_official_network():
    state = make_official_state_dict('s')
    x = torch.randn(2, 3, 96, 128)
    expected_features, expected_logits = official_forward(state, x)

    classifier_sd, _ = convert_official(state, form='classifier')
    classifier = ParNetClassifier(arch='s').eval()
    classifier.load_state_dict(classifier_sd, strict=True)
    backbone_sd, report = convert_official(state, form='backbone')
    assert report['dropped_head'] == ['head.fc.weight', 'head.fc.bias']
    backbone = ParNet(arch='s', out_indices=(3,)).eval()
    backbone.load_state_dict(backbone_sd, strict=True)
    with torch.no_grad():
        assert relative_error(classifier(x), expected_logits) <= 1e-5
        assert relative_error(backbone(x)[0], expected_features) <= 1e-5


def test_wrong_shape_is_a_clear_error():
    state = make_official_state_dict('s')
    state['streams.1.2.block.rbr_dense.conv.weight'] = torch.zeros(192, 192, 1, 1)
    with pytest.raises(ConversionError, match=r'streams\.1\.2\.block\.rbr_dense\.conv\.weight.*\(192, 192, 1, 1\)'):
        convert_official(state)


def test_unknown_keys_are_reported_not_dropped_silently():
    state = make_official_state_dict('s')
    state['head.extra_projection.weight'] = torch.zeros(3)
    _, report = convert_official(state)
    assert report['unused'] == ['head.extra_projection.weight']


@pytest.mark.slow
def test_cli_picks_the_plain_state_dict_by_default_and_writes_a_pretrained_file(tmp_path, capsys):
    """The release's validate commands evaluate the plain state_dict (timm's validate.py without --use-ema): the
    default; the EMA on request."""
    ema, raw = make_official_state_dict('s', seed=1), make_official_state_dict('s', seed=2)
    src = tmp_path / 'parnet_s.pth.tar'
    torch.save({'state_dict': raw, 'state_dict_ema': ema, 'epoch': 120}, src)
    dst = tmp_path / 'converted.pth'
    code, out, err = run_tool(capsys, 'convert_official_weights.py', src, dst)
    assert code == 0, err[-3000:]
    assert 'ParNet arch: s' in out
    # Loads as a Pretrained init_cfg, the way a detection config uses it.
    backbone = ParNet(arch='s', out_indices=(3,), init_cfg=dict(type='Pretrained', checkpoint=str(dst)))
    backbone.init_weights()
    assert torch.equal(backbone.stem[0].conv3x3.conv.weight, raw['inits.0.0.block.rbr_dense.conv.weight'])
    assert torch.load(dst, weights_only=True)['meta']['weights'] == 'state_dict'

    code, _, err = run_tool(capsys, 'convert_official_weights.py', src, dst, '--weights', 'ema', '--form', 'classifier')
    assert code == 0, err[-3000:]
    loaded = torch.load(dst, weights_only=True)
    assert torch.equal(loaded['state_dict']['head.fc.weight'], ema['head.fc.weight'])
    assert not torch.equal(ema['head.fc.weight'], raw['head.fc.weight'])
