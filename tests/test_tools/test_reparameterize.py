
import pytest
import torch
from mmengine.config import Config

from mmdet.registry import MODELS

from ..helpers import randomize_norm_stats, relative_error, run_tool

CONFIG = 'tests/data/configs/retinanet_parnet_tiny.py'


def test_reparameterize_tool_writes_a_checkpoint_that_a_deploy_built_detector_loads(tmp_path, capsys):
    cfg = Config.fromfile(CONFIG)
    detector = MODELS.build(cfg.model)
    randomize_norm_stats(detector)
    detector.eval()
    checkpoint = tmp_path / 'trained.pth'
    torch.save({'state_dict': detector.state_dict(), 'meta': {'iter': 10}}, checkpoint)
    out = tmp_path / 'deploy.pth'
    code, stdout, err = run_tool(capsys, 'reparameterize.py', CONFIG, checkpoint, out)
    assert code == 0, err[-3000:]
    assert 'folded' in stdout

    cfg.model.backbone.deploy = True
    deployed = MODELS.build(cfg.model).eval()
    state = torch.load(out, weights_only=True)
    assert state['meta']['deploy'] and state['meta']['iter'] == 10
    deployed.load_state_dict(state['state_dict'], strict=True)
    assert deployed.backbone.deploy
    x = torch.randn(1, 3, 96, 128)
    with torch.no_grad():
        for a, e in zip(deployed.extract_feat(x), detector.extract_feat(x)):
            assert relative_error(a, e) <= 1e-5


@pytest.mark.slow
def test_reparameterize_refuses_a_model_without_parnet_blocks(tmp_path, capsys):
    checkpoint = tmp_path / 'ckpt.pth'
    cfg = Config.fromfile(CONFIG)
    cfg.model.backbone.deploy = True
    torch.save({'state_dict': MODELS.build(cfg.model).state_dict()}, checkpoint)
    code, _, err = run_tool(capsys, 'reparameterize.py', CONFIG, checkpoint, tmp_path / 'o.pth', '--cfg-options',
                            'model.backbone.deploy=True')
    assert code == 2 and 'no block to fold' in err
