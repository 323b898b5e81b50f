"""tools/test.py evaluates a deploy checkpoint as its training form: same AP, every weight loaded."""
import json
import os.path as osp
import subprocess
import sys

import pytest

from parnet_det.datasets import generate_synthetic_coco, synthetic_coco_cfg_options

from .helpers import ROOT

CONFIG = 'configs/demo/yolo_parnet_tiny_synthetic.py'
SIZE = ['train_dataloader.dataset.pipeline.4.scale=(96,96)', 'val_dataloader.dataset.pipeline.1.scale=(96,96)',
        'test_dataloader.dataset.pipeline.1.scale=(96,96)']


def _run(*args):
    result = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout + result.stderr


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    """A tiny ParNet detector trained briefly on generated shapes, and its deploy checkpoint.

    Measured on the 2-core VM (seed 0): AP 0.004, AP50 0.031 after 8 epochs (64 iterations, about a minute);
    the untrained model has no detection above the score threshold (CocoMetric reports nothing).
    """
    data_root = generate_synthetic_coco(str(tmp_path_factory.mktemp('coco')), num_train=64, num_val=16,
                                        image_size=96, seed=1)['data_root']
    work_dir = tmp_path_factory.mktemp('train')
    _run('tools/train.py', CONFIG, '--work-dir', str(work_dir), '--cfg-options', *synthetic_coco_cfg_options(data_root),
         *SIZE, 'train_cfg.max_epochs=8', 'train_cfg.val_interval=8', 'param_scheduler.0.end=5', 'randomness.seed=0',
         'train_dataloader.num_workers=0', 'train_dataloader.persistent_workers=False')
    checkpoint, deploy = work_dir / 'epoch_8.pth', work_dir / 'deploy.pth'
    _run('tools/reparameterize.py', CONFIG, str(checkpoint), str(deploy))
    return data_root, checkpoint, deploy


def _test(data_root, checkpoint, work_dir):
    log = _run('tools/test.py', CONFIG, str(checkpoint), '--work-dir', str(work_dir), '--cfg-options',
               *synthetic_coco_cfg_options(data_root), *SIZE)
    with open(osp.join(work_dir, 'ap_results.jsonl')) as f:
        return json.loads(f.readline())['metrics'], log


@pytest.mark.slow
def test_a_deploy_checkpoint_evaluates_to_the_ap_of_its_training_form(trained, tmp_path):
    data_root, checkpoint, deploy = trained
    train_form, _ = _test(data_root, checkpoint, tmp_path / 'train_form')
    deploy_form, log = _test(data_root, deploy, tmp_path / 'deploy_form')
    assert train_form.get('coco/bbox_mAP', 0) > 0, train_form  # a trained model: equal APs are not two zeros
    assert deploy_form['coco/bbox_mAP'] == pytest.approx(train_form['coco/bbox_mAP'], abs=1e-3)
    assert deploy_form['coco/bbox_mAP_50'] == pytest.approx(train_form['coco/bbox_mAP_50'], abs=1e-3)
    assert 'do not match' not in log and 'missing keys' not in log
